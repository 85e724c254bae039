-- The log's tables lose their foreign keys to rooms and users (issue 12,
-- appends throughput). PostgreSQL checks a foreign key row by row, each
-- check a query of its own that also locks the referenced row: four per
-- message (room and author, in events and in messages), which took more
-- server time than inserting the two rows (EXPLAIN ANALYZE of a 5,000-row
-- insert: 0.6-0.65 of each statement). The group-commit writer is the only
-- code that inserts into these tables, and it already checks both
-- references in the batch's transaction: the room's row is locked FOR NO
-- KEY UPDATE before its seqs are assigned (an unknown room is refused), and
-- an unknown user is refused after a read of users. Rooms and users are
-- never deleted, so nothing can take a checked reference away. The foreign
-- keys of reactions and pins (to messages) stay: those rows are rare.
ALTER TABLE events DROP CONSTRAINT events_room_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_user_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_room_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_author_id_fkey;
