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

// writeLocalConfig records the local workspace id in config.json, keeping
// every other field. A logged-in config keeps its remote workspace id. It
// never writes a key.
func writeLocalConfig(cfg *Config, workspaceID string) error {
	return updateConfigFile(cfg, func(m map[string]any) {
		if key, _ := m["apiKey"].(string); key == "" {
			// The seed's format names all three fields.
			m["apiKey"], m["apiUrl"], m["workspaceId"] = "", "", workspaceID
		}
	})
}

// updateConfigFile is the one writer of config.json: it applies edit to the
// file's top-level object and writes it back atomically (writeFileAtomic)
// with mode 0600, creating Home (0700) if needed. Fields edit does not touch,
// known to this version or not, are kept as they were. A file that is not a
// JSON object is refused (EINVALID) and left alone.
func updateConfigFile(cfg *Config, edit func(m map[string]any)) error {
	m, err := readConfigMap(cfg)
	if err != nil {
		return err
	}
	edit(m)
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", cfg.Home, err)
	}
	if err := writeFileAtomic(cfg.ConfigPath(), append(out, '\n'), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// readConfigMap reads config.json's top-level object; an absent or empty
// file is an empty one.
func readConfigMap(cfg *Config) (map[string]any, error) {
	m := map[string]any{}
	b, err := os.ReadFile(cfg.ConfigPath())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return m, nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", cfg.ConfigPath(), err)
	}
	if len(strings.TrimSpace(string(b))) > 0 {
		if err := json.Unmarshal(b, &m); err != nil || m == nil {
			return nil, errInvalid("%s is not a JSON object: fix it or remove it", cfg.ConfigPath())
		}
	}
	return m, nil
}
