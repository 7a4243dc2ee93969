-- Vacuum event_deliveries by how much changed, not by how big it is
-- (issue 10: the sweep on top of a long history).
--
-- The sweep reads event_deliveries_due_idx, a partial index of the open
-- deliveries; the drain reads event_deliveries_due_by_project_idx, another.
-- Every delivery leaves about three entries in them (its insert, its ring,
-- its claim: none of those updates is HOT), dead once it finishes, and the
-- sweep's `ring_after <= now()` walks all of them until a vacuum removes
-- them. Inserts land at the right end (later ring_after, higher ids), so
-- nothing else ever cleans the pages to the left.
--
-- With the defaults a vacuum comes after 20% of the table has changed (half
-- a million row versions on 2.5 million deliveries), and when it comes it
-- skips the indexes altogether while fewer than 2% of the table's pages hold
-- dead rows (PostgreSQL 14+'s bypass), which on a large table is the rule:
-- measured on 1,000,000 historical events, the sweep read 293 pages of the
-- due index to find nothing due (1.6 ms; 3 pages on the empty database,
-- which autovacuum vacuums every few hundred changes), and a manual VACUUM
-- did not change that.
--
-- Now: a vacuum after 1,000 dead row versions plus 0.2% of the table
-- (1,200 on 100,000 deliveries, 6,000 on 2.5 million, where the default
-- waited for 500,000), and it always cleans the indexes. Each such vacuum
-- reads all the table's indexes once: the price of a long history (520 MB
-- of index pages on 2.5 million deliveries, throttled by autovacuum's
-- cost limit, and at most once per autovacuum_naptime); retention keeps the
-- table, and so that price, small.
alter table public.event_deliveries set (
  autovacuum_vacuum_scale_factor = 0.002,
  autovacuum_vacuum_threshold = 1000,
  vacuum_index_cleanup = on
);
