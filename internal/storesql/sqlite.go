package storesql

// SQLite specifics shared by every SQLite database of agentkeys (the local
// vault's vault.db and the server's server.db): the connection string and
// the classification of driver errors.

import (
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// DSN returns the connection string for file. Every pragma a connection
// needs is in it, because db.Exec("PRAGMA …") would reach only one pooled
// connection: WAL, a 10 s busy_timeout, foreign keys, synchronous=NORMAL (a
// commit survives the process being killed; a power loss may take the last
// few) and temporary tables in memory. _txlock=immediate makes every
// transaction take the write lock at BEGIN, so busy_timeout applies (a
// deferred reader upgrading to a writer gets SQLITE_BUSY at once when another
// process writes; see NOTES.md).
func DSN(file string) string {
	return file + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(ON)" +
		"&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)&_txlock=immediate"
}

// SQLite is the dialect of both SQLite stores (the local vault sets
// GrantsHaveWorkspace off: its grants rows have no workspace_id).
var SQLite = Dialect{Name: "sqlite", IsUnique: IsUnique, IsBusy: IsBusy, IsDataErr: IsDataErr, GrantsHaveWorkspace: true}

// IsUnique reports whether err is a UNIQUE or PRIMARY KEY constraint failure.
func IsUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// IsBusy reports whether err is SQLITE_BUSY or SQLITE_LOCKED (any extended
// code): another connection or process holds the lock past busy_timeout.
func IsBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

// IsDataErr reports whether err is the database refusing the data itself
// (a constraint, a type mismatch, a value too big) rather than being busy
// or unreachable: retrying the same write cannot succeed.
func IsDataErr(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG:
			return true
		}
	}
	return false
}
