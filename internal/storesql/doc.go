// Package storesql is the one rule set of the two stores that keep a
// workspace's contents: the local vault (localvault, SQLite) and the server
// (server/store, SQLite or PostgreSQL). It holds the SQL they share, one file
// per noun (credential.go, agent.go, route.go, audit.go), the checks every
// writer of a credential or an agent goes through before a row is inserted
// or changed (CheckCredential, CheckCredentialUpdate, CheckAgentName), the
// messages of the refusals they return, and the plumbing both need
// (transactions, driver-error translation, the migration loader, the SQLite
// connection string). A store keeps only what is really its own: how it
// finds its keys, how its caches learn of a change, how its migrations are
// recorded.
//
// Queries use $N placeholders, which SQLite and PostgreSQL both accept;
// what differs between the databases (how a driver error is recognised,
// whether grants rows carry a workspace_id) is a Dialect.
//
// It is infrastructure for the adapters, not a domain package: the domain
// rules themselves (Normalize, ValidateName, ParseHostPattern) live in the
// root package; internal/hostpolicy adds the public-suffix check.
package storesql
