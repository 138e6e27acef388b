package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/viper"

	"github.com/agentkeys/agentkeys"
)

// Config is the CLI's configuration. Precedence, highest first: command-line
// flags (--home); AGENTKEYS_* environment variables; $AGENTKEYS_HOME/config.json,
// whose format is the seed's: {"apiKey": "ak_ws_…", "apiUrl": "https://…",
// "workspaceId": "ws_…"}.
type Config struct {
	// Home is the directory holding config.json and vault.db:
	// --home, else AGENTKEYS_HOME, else ~/.agentkeys.
	Home string
	// APIKey, APIURL and WorkspaceID come from config.json or
	// AGENTKEYS_API_KEY, AGENTKEYS_API_URL, AGENTKEYS_WORKSPACE_ID. With both
	// an APIKey and an APIURL the CLI acts on that server's workspace (see
	// remote.go); `agentkeys login` writes them and `logout` removes them.
	APIKey      string
	APIURL      string
	WorkspaceID string
	// MasterKey (AGENTKEYS_MASTER_KEY, base64 of 32 bytes) and Passphrase
	// (AGENTKEYS_PASSPHRASE) unlock the local vault; environment only, never
	// read from or written to config.json.
	MasterKey  string
	Passphrase string
}

// ConfigPath is the path of config.json.
func (c *Config) ConfigPath() string { return filepath.Join(c.Home, "config.json") }

// configFile is config.json as written by init (and later login).
type configFile struct {
	APIKey      string `json:"apiKey"`
	APIURL      string `json:"apiUrl"`
	WorkspaceID string `json:"workspaceId"`
}

func loadConfig(homeFlag string, getenv func(string) string) (*Config, error) {
	home := strings.TrimSpace(homeFlag)
	if home == "" {
		home = strings.TrimSpace(getenv("AGENTKEYS_HOME"))
	}
	if home == "" {
		h, err := defaultHome(getenv)
		if err != nil {
			return nil, err
		}
		home = h
	}
	if abs, err := filepath.Abs(home); err == nil {
		home = abs
	}
	cfg := &Config{Home: home}

	v := viper.New()
	v.SetConfigFile(cfg.ConfigPath())
	v.SetConfigType("json")
	if _, err := os.Stat(cfg.ConfigPath()); err == nil {
		if err := v.ReadInConfig(); err != nil {
			var pe viper.ConfigParseError
			if errors.As(err, &pe) {
				return nil, agentkeys.Errorf(agentkeys.EINVALID, "%s is not valid JSON: fix it or remove it", cfg.ConfigPath())
			}
			return nil, fmt.Errorf("read %s: %w", cfg.ConfigPath(), err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", cfg.ConfigPath(), err)
	}
	// Viper's env lookup uses os.Getenv; ours goes through getenv so tests
	// stay hermetic. Environment overrides the file.
	for key, env := range map[string]string{
		"apiKey": "AGENTKEYS_API_KEY", "apiUrl": "AGENTKEYS_API_URL", "workspaceId": "AGENTKEYS_WORKSPACE_ID",
	} {
		if val := getenv(env); val != "" {
			v.Set(key, val)
		}
	}
	cfg.APIKey = v.GetString("apiKey")
	cfg.APIURL = v.GetString("apiUrl")
	cfg.WorkspaceID = v.GetString("workspaceId")
	cfg.MasterKey = getenv("AGENTKEYS_MASTER_KEY")
	cfg.Passphrase = getenv("AGENTKEYS_PASSPHRASE")
	return cfg, nil
}

// writeLocalConfig records the local workspace id in config.json (0600),
// keeping an existing file's other fields. It never writes a key.
func writeLocalConfig(cfg *Config, workspaceID string) error {
	var cf configFile
	if b, err := os.ReadFile(cfg.ConfigPath()); err == nil {
		if err := json.Unmarshal(b, &cf); err != nil {
			return agentkeys.Errorf(agentkeys.EINVALID, "%s is not valid JSON: fix it or remove it", cfg.ConfigPath())
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read config: %w", err)
	}
	if cf.APIKey == "" { // a logged-in config points at its remote workspace
		cf.WorkspaceID = workspaceID
	}
	b, err := json.MarshalIndent(cf, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", cfg.Home, err)
	}
	tmp := cfg.ConfigPath() + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(tmp, cfg.ConfigPath()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}
