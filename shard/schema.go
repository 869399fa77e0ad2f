package shard

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// lockClass is the first key of every advisory lock the package takes
// ("herd" in ASCII); the second is the bucket.
const lockClass = 0x68657264

// SQLSTATEs raised by herd_shard_enter and the check functions.
const (
	codeFenced   = "HS001" // the bucket is fenced for a move: retry soon
	codeNotOwned = "HS002" // the shard does not own the bucket: refresh the map
	codeBypass   = "HS003" // a write that did not enter its bucket
)

// mapSchema lives on the map database.
const mapSchema = `
CREATE TABLE IF NOT EXISTS herd_shard_map (
	id      boolean PRIMARY KEY DEFAULT true CHECK (id),
	buckets integer NOT NULL,
	version bigint  NOT NULL,
	hash    text    NOT NULL
);
CREATE TABLE IF NOT EXISTS herd_shard_shards (
	name     text PRIMARY KEY,
	added_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS herd_shard_buckets (
	bucket  integer PRIMARY KEY,
	shard   text    NOT NULL REFERENCES herd_shard_shards (name),
	version bigint  NOT NULL
);
CREATE TABLE IF NOT EXISTS herd_shard_moves (
	id          bigserial PRIMARY KEY,
	bucket      integer NOT NULL,
	source      text    NOT NULL,
	target      text    NOT NULL REFERENCES herd_shard_shards (name),
	phase       text    NOT NULL,
	version     bigint,
	rows_copied bigint  NOT NULL DEFAULT 0,
	changes     bigint  NOT NULL DEFAULT 0,
	created_at  timestamptz NOT NULL DEFAULT now(),
	updated_at  timestamptz NOT NULL DEFAULT now(),
	fenced_at   timestamptz,
	released_at timestamptz,
	finished_at timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS herd_shard_moves_open ON herd_shard_moves (bucket) WHERE finished_at IS NULL;
`

// shardSchema lives on every shard. herd_shard_local is the shard's own
// view of the buckets it holds; herd_shard_changes is the change log of
// buckets being copied away.
const shardSchema = `
CREATE TABLE IF NOT EXISTS herd_shard_local (
	bucket  integer PRIMARY KEY,
	state   text NOT NULL CHECK (state IN ('owned', 'copying', 'fenced', 'incoming', 'moved')),
	version bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS herd_shard_changes (
	seq    bigserial PRIMARY KEY,
	bucket integer NOT NULL,
	tbl    text    NOT NULL,
	pk     jsonb   NOT NULL
);
CREATE INDEX IF NOT EXISTS herd_shard_changes_bucket ON herd_shard_changes (bucket, seq);

-- herd_shard_enter(b, write) is the first statement of every call the
-- package routes. It takes the bucket's advisory lock shared (a move takes
-- it exclusive to change the bucket's state, so the state cannot change
-- under a call that entered), then checks the state. A write may proceed
-- on an owned or copying bucket (copying: its changes are logged); a read
-- also on a fenced one (its rows are frozen and complete).
CREATE OR REPLACE FUNCTION herd_shard_enter(b integer, write boolean) RETURNS void
LANGUAGE plpgsql VOLATILE AS $f$
DECLARE st text;
BEGIN
	PERFORM pg_advisory_xact_lock_shared(` + "1751478884" + `, b);
	SELECT state INTO st FROM herd_shard_local WHERE bucket = b;
	IF st = 'owned' OR st = 'copying' OR (st = 'fenced' AND NOT write) THEN
		IF write THEN
			PERFORM set_config('herd_shard.bucket', b::text, true);
			PERFORM set_config('herd_shard.log', CASE WHEN st = 'copying' THEN 'on' ELSE 'off' END, true);
		END IF;
		RETURN;
	END IF;
	IF st = 'fenced' THEN
		RAISE EXCEPTION 'shard: bucket % is fenced for a move', b USING ERRCODE = 'HS001';
	END IF;
	RAISE EXCEPTION 'shard: bucket % is not on this shard (%)', b, coalesce(st, 'absent') USING ERRCODE = 'HS002';
END
$f$;

-- herd_shard_check(buckets) is true when this shard holds every bucket
-- given (the caller's map says it owns them); otherwise the map is stale
-- and it raises HS002. STABLE: it reads the calling statement's snapshot,
-- so the rows the statement reads are those of buckets it checked.
CREATE OR REPLACE FUNCTION herd_shard_check(buckets integer[]) RETURNS boolean
LANGUAGE plpgsql STABLE AS $f$
DECLARE n integer;
BEGIN
	SELECT count(*) INTO n FROM herd_shard_local
	 WHERE bucket = ANY(buckets) AND state IN ('owned', 'copying', 'fenced');
	IF n <> coalesce(cardinality(buckets), 0) THEN
		RAISE EXCEPTION 'shard: the map is stale: % of % buckets are not on this shard', coalesce(cardinality(buckets), 0) - n, coalesce(cardinality(buckets), 0) USING ERRCODE = 'HS002';
	END IF;
	RETURN true;
END
$f$;
`

// Table is one sharded table: the same table on every shard, each row
// carrying its bucket in a column.
type Table struct {
	// Name is the table's name, unqualified (the shard's search_path finds it).
	Name string
	// Bucket is the integer column holding the row's bucket
	// (BucketOf(key, buckets)); default "shard_bucket". Index it.
	Bucket string
	// Key is the primary key's columns (or any unique, non-null key); required.
	Key []string
}

func (t Table) bucketCol() string {
	if t.Bucket == "" {
		return "shard_bucket"
	}
	return t.Bucket
}

func (t Table) ident() string { return pgx.Identifier{t.Name}.Sanitize() }

func (t Table) validate() error {
	if t.Name == "" {
		return fmt.Errorf("shard: table with no name")
	}
	if len(t.Key) == 0 {
		return fmt.Errorf("shard: table %s: no key columns", t.Name)
	}
	return nil
}

// triggerSQL installs the row trigger on t: a function of its own, with
// the bucket and key columns written in (a generic function reading the
// row as JSON cost twice as much per row). It refuses a write to a row of
// a bucket the transaction did not enter (so nothing writes around a
// move's fence), and logs the key of a row of a copying bucket.
func (t Table) triggerSQL() string {
	fn := pgx.Identifier{"herd_shard_log_" + t.Name}.Sanitize()
	bcol := pgx.Identifier{t.bucketCol()}.Sanitize()
	pk := func(rec string) string {
		parts := make([]string, len(t.Key))
		for i, k := range t.Key {
			parts[i] = quoteLiteral(k) + ", " + rec + "." + pgx.Identifier{k}.Sanitize()
		}
		return "jsonb_build_object(" + strings.Join(parts, ", ") + ")"
	}
	keys := func(rec string) string { return "ROW(" + t.keyList(rec+".") + ")" }
	refuse := func(rec string) string {
		return fmt.Sprintf(`RAISE EXCEPTION 'shard: %% on %%: row of bucket %% written without entering it (entered %%); write through shard.DB', TG_OP, TG_TABLE_NAME, %s.%s, eb USING ERRCODE = '%s';`, rec, bcol, codeBypass)
	}
	name := quoteLiteral(t.Name)
	return `CREATE OR REPLACE FUNCTION ` + fn + `() RETURNS trigger LANGUAGE plpgsql AS $herd$
DECLARE
	eb integer;
	lg boolean;
BEGIN
	IF current_setting('herd_shard.bypass', true) = 'on' THEN
		RETURN NULL;
	END IF;
	eb := nullif(current_setting('herd_shard.bucket', true), '')::integer;
	lg := current_setting('herd_shard.log', true) = 'on';
	IF TG_OP <> 'INSERT' THEN
		IF OLD.` + bcol + ` IS DISTINCT FROM eb THEN
			` + refuse("OLD") + `
		END IF;
		IF lg THEN
			INSERT INTO herd_shard_changes (bucket, tbl, pk) VALUES (eb, ` + name + `, ` + pk("OLD") + `);
		END IF;
	END IF;
	IF TG_OP <> 'DELETE' THEN
		IF NEW.` + bcol + ` IS DISTINCT FROM eb THEN
			` + refuse("NEW") + `
		END IF;
		IF lg AND (TG_OP = 'INSERT' OR ` + keys("NEW") + ` IS DISTINCT FROM ` + keys("OLD") + `) THEN
			INSERT INTO herd_shard_changes (bucket, tbl, pk) VALUES (eb, ` + name + `, ` + pk("NEW") + `);
		END IF;
	END IF;
	RETURN NULL;
END
$herd$;
CREATE OR REPLACE TRIGGER herd_shard_log AFTER INSERT OR UPDATE OR DELETE ON ` + t.ident() + ` FOR EACH ROW EXECUTE FUNCTION ` + fn + `();`
}

// keyList returns the key columns as a quoted SQL list: "a", "b".
func (t Table) keyList(prefix string) string {
	parts := make([]string, len(t.Key))
	for i, k := range t.Key {
		parts[i] = prefix + pgx.Identifier{k}.Sanitize()
	}
	return strings.Join(parts, ", ")
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
