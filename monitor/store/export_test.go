package store

import (
	"context"
	"database/sql"
)

// OpenAtSchema opens a store migrated up to version only: the store of an
// earlier release, for tests of an upgrade.
func OpenAtSchema(ctx context.Context, opts Options, version int64) (*Store, error) {
	opts.schema = version
	return Open(ctx, opts)
}

// DB is the store's database, for tests that write an earlier schema's
// rows or look at the tables themselves.
func (s *Store) DB() *sql.DB { return s.db }
