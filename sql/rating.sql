
--------------------------------------------------------------------------
-- CloudKitty's rated data (panko_drivers.cloudkitty): data points stored
-- as events of their own types, and the SQL its v2 storage backend calls.
-- (Appended to sql/panko.sql by the build; same rules: every object once,
-- in its final form, and into the next version's upgrade script too.)
--------------------------------------------------------------------------
