package localvault

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/agentkeys/agentkeys"
)

// Info is what can be known about a vault without its key.
type Info struct {
	Path        string // vault.db
	WorkspaceID string
	// InitSource is the key source the vault was created with
	// (SourceEnvironment, SourcePassphrase or SourceKeychain; "" when older
	// vaults did not record it).
	InitSource string
	// KeyFile is Home/vault.key when it exists, else "".
	KeyFile string
}

// Inspect reads a vault's workspace id and key arrangement without a key
// and without writing anything. Returns ENOTFOUND when there is no vault in
// home, EUNAVAILABLE when the file is not an agentkeys vault.
func Inspect(ctx context.Context, home string) (*Info, error) {
	home, err := filepath.Abs(home)
	if err != nil {
		return nil, fmt.Errorf("vault home: %w", err)
	}
	info := &Info{Path: filepath.Join(home, DBFileName)}
	ok, err := fileExists(info.Path)
	if err != nil {
		return nil, fmt.Errorf("open vault: %w", err)
	}
	if !ok {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no vault at %s: run `agentkeys init`", info.Path)
	}
	db, err := openDB(info.Path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := checkSchema(ctx, db, info.Path); err != nil {
		return nil, err
	}
	err = db.QueryRowContext(ctx, `SELECT id, COALESCE((SELECT value FROM meta WHERE key = 'key_source'), '')
		FROM workspaces LIMIT 1`).Scan(&info.WorkspaceID, &info.InitSource)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, agentkeys.Errorf(agentkeys.EUNAVAILABLE, "%s holds no workspace: it was not created by `agentkeys init`", info.Path)
	}
	if err != nil {
		return nil, storeErr("read workspace", err)
	}
	kf := filepath.Join(home, KeyFileName)
	if ok, _ := fileExists(kf); ok {
		info.KeyFile = kf
	}
	return info, nil
}
