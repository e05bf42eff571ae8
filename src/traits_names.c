/*
 * traits_names.c
 *		The trait names OpenStack services emit most (Ceilometer's event
 *		definitions, CADF audit events), stored as one-byte codes.  Every
 *		event repeats its trait names, so this halves the size of typical
 *		traits.  The list is part of the on-disk format: codes are positions,
 *		so names may only ever be appended (at most 255).
 */
#include "postgres.h"

#include "common/hashfn.h"

#include "traits.h"

static const char *const trait_names[] = {
	"access_ip_v4", "access_ip_v6", "action", "architecture", "audit_period_beginning",
	"audit_period_ending", "availability_zone", "bytes", "cell_name", "checksum",
	"container", "container_format", "created_at", "deleted_at", "description",
	"device_id", "device_owner", "disk_format", "disk_gb", "display_name",
	"domain_id", "ephemeral_gb", "eventTime", "eventType", "fixed_ips",
	"flavor_id", "flavor_name", "floating_ip_address", "group_id", "host",
	"hostname", "id", "image_id", "image_meta", "image_name",
	"image_ref", "image_ref_url", "initiator_id", "initiator_name", "initiator_project_id",
	"instance_id", "instance_type", "instance_type_id", "ip_address", "is_public",
	"kernel_id", "launched_at", "mac_address", "memory_mb", "message",
	"name", "network_id", "node", "object", "observer_id",
	"os_architecture", "os_distro", "os_version", "outcome", "port_id",
	"power_state", "project_id", "protocol", "ramdisk_id", "reason",
	"replication_status", "request_id", "resource_id", "role_id", "root_gb",
	"router_id", "security_group_id", "service", "size", "snapshot_id",
	"source_volid", "state", "state_description", "status", "subnet_id",
	"target_id", "task_state", "tenant_id", "terminated_at", "trust_id",
	"type", "typeURI", "updated_at", "user_id", "vcpus",
	"visibility", "volume_id", "volume_size", "volume_type", "zone_id",
};

/*
 * Codes by name, for TraitCodeForName: an open-addressing table of the
 * names' hashes, built on first use (every trait of every stored event is
 * looked up here).
 */
#define CODE_SLOTS	512

static uint8 code_slots[CODE_SLOTS];
static bool code_slots_ready = false;

/* The table's slot for a name of these bytes. */
static inline uint32
NameSlot(const char *name, int namelen)
{
	return hash_bytes((const unsigned char *) name, namelen) & (CODE_SLOTS - 1);
}

/* The name a code stands for (codes are 1-based: 0 is never a code). */
const char *
TraitNameForCode(int code)
{
	if (code < 1 || code > (int) lengthof(trait_names))
		return "";
	return trait_names[code - 1];
}

/* The code of a name, or 0 when the name has none. */
int
TraitCodeForName(const char *name, int namelen)
{
	uint32		slot;

	if (!code_slots_ready)
	{
		StaticAssertStmt(lengthof(trait_names) < CODE_SLOTS / 2, "too many coded names for the table");
		for (int i = 0; i < (int) lengthof(trait_names); i++)
		{
			slot = NameSlot(trait_names[i], strlen(trait_names[i]));
			while (code_slots[slot] != 0)
				slot = (slot + 1) & (CODE_SLOTS - 1);
			code_slots[slot] = (uint8) (i + 1);
		}
		code_slots_ready = true;
	}
	for (slot = NameSlot(name, namelen); code_slots[slot] != 0; slot = (slot + 1) & (CODE_SLOTS - 1))
	{
		const char *candidate = trait_names[code_slots[slot] - 1];

		if (strncmp(candidate, name, namelen) == 0 && candidate[namelen] == '\0')
			return code_slots[slot];
	}
	return 0;
}
