
--------------------------------------------------------------------------
-- Kaneda's metrics and events (panko_drivers.kaneda): reports stored as
-- events of their own types, and the series functions that read them.
-- (Appended to sql/panko.sql and sql/rating.sql by the build; same rules:
-- every object once, in its final form, and into the next version's
-- upgrade script too.)
--------------------------------------------------------------------------
