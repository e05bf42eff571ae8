"""CloudKitty's own backend-independent storage tests, unmodified, against
the panko backend: StorageUnitTest (Debian's python3-cloudkitty) with a
panko scenario instead of its InfluxDB and Elasticsearch fakes.

The upstream module is imported as a module, so that unittest collects
only the subclass below (whose scenarios are sqlite x panko)."""

import testscenarios

import common
from cloudkitty.tests import TestCase
from cloudkitty.tests.storage.v2 import test_storage_unit as upstream


class PankoStorageUnitTest(upstream.StorageUnitTest):

    storage_scenarios = [('panko', dict(storage_backend='panko'))]
    scenarios = testscenarios.multiply_scenarios(TestCase.scenarios, storage_scenarios)

    def setUp(self):
        common.empty_store()
        common.configure()
        super(PankoStorageUnitTest, self).setUp()
