package dashboard

import (
	"net/http"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
)

// view is what every page template gets.
type view struct {
	Title   string
	Actor   *agentkeys.Actor
	CSRF    string
	Error   string
	Notice  string
	Current string // the nav entry to mark
	Data    any

	// Switcher is the header's workspace switcher (settings.go).
	Switcher *switcher
}

// Can reports whether the signed-in member's role allows p (which buttons
// to show; the API refuses anyway).
func (v *view) Can(p string) bool { return v.Actor.Can(agentkeys.Permission(p)) }

func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, page string, s *session, v view) {
	d.execute(w, r, status, page, "layout.html", s, v)
}

// fragment renders the template named block of page without the layout:
// the answer to an htmx request that swaps part of a page (the page's
// template file defines the block, and its "content" uses it too, so the
// full page and the fragment cannot drift apart).
func (d *Dashboard) fragment(w http.ResponseWriter, r *http.Request, status int, page, block string, s *session, v view) {
	d.execute(w, r, status, page, block, s, v)
}

func (d *Dashboard) execute(w http.ResponseWriter, r *http.Request, status int, page, name string, s *session, v view) {
	t, ok := d.pages[page]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	if s != nil {
		v.Actor, v.CSRF = s.actor, s.csrf()
	}
	if s != nil { // the header's workspace switcher (settings.go)
		v.Switcher = d.switcher(r, s)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, name, &v); err != nil {
		d.cfg.Logger.ErrorContext(r.Context(), "dashboard template", "page", page, "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// fail renders an error page with the API's (or the dashboard's) message.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	d.render(w, r, status, "error", s, view{Title: "Error", Error: msg})
}

// failErr renders err from the API with its status.
func (d *Dashboard) failErr(w http.ResponseWriter, r *http.Request, s *session, status int, err error) {
	if status < 400 {
		status = agentkeys.StatusForCode(agentkeys.ErrorCode(err))
	}
	d.fail(w, r, s, status, agentkeys.ErrorMessage(err))
}

type confirmPage struct {
	What, Name, Action string
}

func formatTime(t any) string {
	switch v := t.(type) {
	case *time.Time:
		if v == nil {
			return "—"
		}
		return v.UTC().Format("2006-01-02 15:04 UTC")
	case time.Time:
		if v.IsZero() {
			return "—"
		}
		return v.UTC().Format("2006-01-02 15:04 UTC")
	}
	return "—"
}
