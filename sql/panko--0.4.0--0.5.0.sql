-- panko 0.4.0 -> 0.5.0: retention classes (traces, rated data and metrics
-- keep their own time to live, dropped by whole partitions), CloudKitty's
-- rated data and Kaneda's metrics.
\echo Use "ALTER EXTENSION panko UPDATE TO '0.5.0'" to load this file. \quit
