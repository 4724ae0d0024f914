-- Where the watch of the registry's link changes resumes: the sequence of the last change
-- applied. One row; a voice restart continues after it, so no change is lost or applied twice.
CREATE TABLE link_watch (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    after_sequence bigint NOT NULL CHECK (after_sequence >= 0)
);
