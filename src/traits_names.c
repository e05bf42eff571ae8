/*
 * traits_names.c
 *		The trait names OpenStack services emit most (Ceilometer's event
 *		definitions, CADF audit events), stored as one-byte codes.  Every
 *		event repeats its trait names, so this halves the size of typical
 *		traits.  The list is part of the on-disk format: codes are positions,
 *		so names may only ever be appended (at most 255).
 */
#include "postgres.h"

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

/* Codes sorted by name, for a binary search; built on first use. */
static int	sorted_codes[lengthof(trait_names)];
static bool sorted_ready = false;

/* qsort order of codes: by their names, for the binary search below. */
static int
CodeCompare(const void *a, const void *b)
{
	return strcmp(trait_names[*(const int *) a], trait_names[*(const int *) b]);
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
	int			lo = 0,
				hi = (int) lengthof(trait_names) - 1;

	if (!sorted_ready)
	{
		for (int i = 0; i < (int) lengthof(trait_names); i++)
			sorted_codes[i] = i;
		qsort(sorted_codes, lengthof(trait_names), sizeof(int), CodeCompare);
		sorted_ready = true;
	}
	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		const char *candidate = trait_names[sorted_codes[mid]];
		int			r = strncmp(candidate, name, namelen);

		if (r == 0)
			r = (candidate[namelen] != '\0');
		if (r == 0)
			return sorted_codes[mid] + 1;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return 0;
}
