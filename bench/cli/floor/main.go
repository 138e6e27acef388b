// Command floor is the least a program built on agentkeys' dependencies
// can do: a cobra command that links every third-party package agentkeys
// imports (blank imports, so their package inits run at each start, as they
// do in agentkeys) and none of agentkeys' own code. `go run ./bench/cli`
// compares agentkeys with it, so that the figures separate what agentkeys
// adds from what its dependencies cost:
//
//	floor --version   start-up
//	floor list DB     the list benchmark's query on the SQLite file DB,
//	                  through database/sql and modernc.org/sqlite, printed
//	                  tab-separated as sqlite3 -separator '\t' prints it
//
// Keep the imports in step with agentkeys' (bench/cli checks it).
package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	_ "github.com/aymanbagabas/go-osc52/v2"
	_ "github.com/charmbracelet/bubbles/cursor"
	_ "github.com/charmbracelet/bubbles/help"
	_ "github.com/charmbracelet/bubbles/key"
	_ "github.com/charmbracelet/bubbles/textinput"
	_ "github.com/charmbracelet/bubbletea"
	_ "github.com/charmbracelet/lipgloss"
	_ "github.com/charmbracelet/x/ansi"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/mark3labs/mcp-go/mcp"
	_ "github.com/mark3labs/mcp-go/server"
	_ "github.com/muesli/termenv"
	_ "github.com/spf13/pflag"
	_ "github.com/spf13/viper"
	_ "github.com/stripe/stripe-go/v85"
	_ "github.com/stripe/stripe-go/v85/webhook"
	_ "github.com/tyler-smith/go-bip39"
	_ "github.com/zalando/go-keyring"
	_ "golang.org/x/crypto/argon2"
	_ "golang.org/x/net/http/httpguts"
	_ "golang.org/x/net/idna"
	_ "golang.org/x/net/publicsuffix"
	_ "golang.org/x/oauth2"
	_ "golang.org/x/sync/singleflight"
	_ "golang.org/x/term"
	_ "modernc.org/sqlite"
	_ "modernc.org/sqlite/lib"
)

// Query is the list benchmark's query (the sqlite3 command-line tool runs
// the same).
const Query = "SELECT id, name, type, allowed_hosts, created_at FROM credentials ORDER BY name_key"

func main() {
	root := &cobra.Command{Use: "floor", Version: "1.0.0", Run: func(*cobra.Command, []string) {}}
	root.AddCommand(&cobra.Command{
		Use:  "list DB",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return list(args[0]) },
	})
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}

// list prints Query's rows from the database file path.
func list(path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.Query(Query)
	if err != nil {
		return err
	}
	defer rows.Close()
	w := bufio.NewWriter(os.Stdout)
	var id, name, typ, hosts string
	var created int64
	for rows.Next() {
		if err := rows.Scan(&id, &name, &typ, &hosts, &created); err != nil {
			return err
		}
		w.WriteString(strings.Join([]string{id, name, typ, hosts, strconv.FormatInt(created, 10)}, "\t"))
		w.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
