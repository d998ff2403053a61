-- vmctld's store, version 2: a domain's graphical display (issue #6). JSON like the other
-- nested shapes ({"type":"vnc"}), validated by the API's zod schemas; NULL = no display, which
-- is what every domain defined before this version has.
ALTER TABLE domains ADD COLUMN display TEXT;
