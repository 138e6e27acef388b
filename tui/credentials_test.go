package tui_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/tui"
)

func TestCredentials_ListShowsMetadataOnly(t *testing.T) {
	v := mustOpenVault(t)
	seed(t, v)
	d := start(t, newApp(v, tui.Options{}), 120, 40)
	d.mustSee("Resend Production", "API_KEY", "api.resend.com", "BASIC_AUTH", "api.stripe.com, files.stripe.com", "2026-11-26", "5 credentials")
	d.mustNotSee(seedCanaries...)
}

func TestCredentials_Filter(t *testing.T) {
	v := mustOpenVault(t)
	seed(t, v)
	d := start(t, newApp(v, tui.Options{}), 120, 40)
	tests := []struct {
		typed     string
		see, miss []string
	}{
		{"resend", []string{"Resend Production", "1 of 5 credentials"}, []string{"Stripe test", "GitHub bot"}},
		{"basic", []string{"Stripe test"}, []string{"Resend Production"}},                      // by type
		{"googleapis", []string{"Maps"}, []string{"Resend Production"}},                        // by host
		{"zzz", []string{"Nothing matches the filter"}, []string{"Resend Production", "Maps"}}, // nothing
	}
	for _, tt := range tests {
		t.Run(tt.typed, func(t *testing.T) {
			d.tb = t
			d.keys("/" + tt.typed)
			d.mustSee(tt.see...)
			d.mustNotSee(tt.miss...)
			d.keys("<enter>") // keep the filter, leave the field
			d.mustSee(tt.see...)
			d.keys("<esc>") // esc clears it
			d.mustSee("Resend Production", "Stripe test", "5 credentials")
		})
	}
}

// formKeys opens the add form and fills it: fields are typed into in order
// (tab between them); "" skips a field.
func addForm(d *driver, typeSteps int, fields ...string) {
	d.keys("n")
	d.mustSee("Add a credential")
	d.keys(fields[0] + "<tab>") // name, now on type
	for i := 0; i < typeSteps; i++ {
		d.keys("<right>")
	}
	d.keys("<tab>")
	for _, f := range fields[1:] {
		d.paste(f)
		d.keys("<tab>")
	}
}

func TestCredentials_AddFormPerType(t *testing.T) {
	// Field order after Name and Type: Service, the type's fields, Allowed hosts.
	tests := []struct {
		name      string
		typeSteps int // right-arrow presses from API_KEY
		fields    []string
		wantType  agentkeys.CredentialType
		wantErr   string // shown in place; "" means created
		wantHosts string
	}{
		{"api key with preset from name", 0, []string{"Resend Production", "", "re_CANARY1"}, agentkeys.APIKey, "", "api.resend.com"},
		{"api key missing value", 0, []string{"Resend Production", "", ""}, agentkeys.APIKey, "missing value", ""},
		{"api key no hosts", 0, []string{"My thing", "", "k_CANARY2", ""}, agentkeys.APIKey, "no allowed hosts", ""},
		{"api key unknown service", 0, []string{"My thing", "nosuchservice", "k_CANARY3"}, agentkeys.APIKey, "unknown service", ""},
		{"api key preset from service", 0, []string{"Mail", "sendgrid", "k_CANARY4"}, agentkeys.APIKey, "", "api.sendgrid.com"},
		{"api key bad host", 0, []string{"X", "", "k_CANARY5", "https://api.x.com/v1"}, agentkeys.APIKey, "not a URL or path", ""},
		{"cookie paste-all", 1, []string{"Dashboard", "", "sid=CANARY6; csrf=abc", "app.example.com"}, agentkeys.Cookie, "", "app.example.com"},
		{"cookie not pairs", 1, []string{"Dashboard", "", "=CANARY7", "app.example.com"}, agentkeys.Cookie, "cookie value must look like", ""},
		{"cookie bare value refused, not echoed", 1, []string{"Dashboard", "", "CANARY7b", "app.example.com"}, agentkeys.Cookie, "cookie value must look like", ""},
		{"basic auth", 2, []string{"Twilio", "", "ada", "pw_CANARY8"}, agentkeys.BasicAuth, "", "api.twilio.com, *.twilio.com"},
		{"basic auth preset host to fill in", 2, []string{"Jira", "", "ada", "pw_CANARY8b"}, agentkeys.BasicAuth, "has a placeholder", ""},
		{"basic auth colon in user", 2, []string{"Twilio", "", "a:b", "pw_CANARY9"}, agentkeys.BasicAuth, "may not contain ':'", ""},
		{"basic auth no password", 2, []string{"Twilio", "", "ada", ""}, agentkeys.BasicAuth, "missing password", ""},
		{"custom header", 3, []string{"Anthropic", "", "x-api-key", "sk_CANARY10"}, agentkeys.CustomHeader, "", "api.anthropic.com"},
		{"custom header forbidden", 3, []string{"Anthropic", "", "Host", "CANARY11"}, agentkeys.CustomHeader, "cannot be injected", ""},
		{"custom header none", 3, []string{"Anthropic", "", "", ""}, agentkeys.CustomHeader, "at least one header", ""},
		{"query param", 4, []string{"Google Maps", "", "key", "CANARY12"}, agentkeys.QueryParam, "", "maps.googleapis.com"},
		{"query param bad name", 4, []string{"Google Maps", "", "a=b", "CANARY13"}, agentkeys.QueryParam, "may not contain", ""},
		{"oauth access token", 5, []string{"Linear", "", "at_CANARY14"}, agentkeys.OAuth, "", "api.linear.app"},
		{"missing name", 0, []string{"", "resend", "CANARY15"}, agentkeys.APIKey, "missing credential name", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustOpenVault(t)
			d := start(t, newApp(v, tui.Options{}), 100, 30)
			addForm(d, tt.typeSteps, tt.fields...)
			d.mustSee(string(tt.wantType))
			d.keys("<ctrl+s>")
			creds, err := v.ListCredentials(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" {
				d.mustSee("Add a credential", tt.wantErr)
				if len(creds) != 0 {
					t.Fatalf("refused form wrote %d credentials", len(creds))
				}
			} else {
				if len(creds) != 1 {
					t.Fatalf("want 1 credential, got %d; view:\n%s", len(creds), d.view())
				}
				c := creds[0]
				if c.Name != strings.TrimSpace(tt.fields[0]) || c.Type != tt.wantType || strings.Join(c.AllowedHosts, ", ") != tt.wantHosts {
					t.Fatalf("created %+v", c)
				}
				d.mustSee("Added "+c.Name, "allowed hosts: "+tt.wantHosts)
			}
			// No secret typed into the form is ever rendered, before or after.
			for _, f := range tt.fields {
				if strings.Contains(f, "CANARY") {
					d.mustNotSee(f)
					d.keys("<esc>")
					d.mustNotSee(f)
				}
			}
		})
	}
}

func TestCredentials_SecretFieldsMaskedAndNeverRendered(t *testing.T) {
	v := mustOpenVault(t)
	d := start(t, newApp(v, tui.Options{}), 80, 24)
	const canary = "sk_live_CANARY_9f8e7d"
	views := []string{}
	d.keys("n")
	d.keys("Stripe<tab><tab><tab>") // name, type, service -> API key
	d.keys(canary)
	views = append(views, d.view())
	d.mustSee("•••••")
	d.keys("<ctrl+s>")
	views = append(views, d.view())
	for _, k := range []string{"2", "3", "4", "1", "?", "?", "/", "<esc>", "d"} {
		d.keys(k)
		views = append(views, d.view())
	}
	for i, v := range views {
		if strings.Contains(v, canary) || strings.Contains(v, canary[:10]) {
			t.Fatalf("view %d shows the secret:\n%s", i, v)
		}
	}
	c, err := v.FindCredential(context.Background(), "Stripe")
	if err != nil {
		t.Fatalf("credential not written: %v", err)
	}
	if strings.Join(c.AllowedHosts, ",") != "api.stripe.com,files.stripe.com" {
		t.Fatalf("hosts %v", c.AllowedHosts)
	}
}

func TestCredentials_HostsPrefilledUntilEdited(t *testing.T) {
	v := mustOpenVault(t)
	d := start(t, newApp(v, tui.Options{}), 100, 30)
	d.keys("n").keys("GitHub")
	d.mustSee("api.github.com, uploads.github.com")
	d.keys(" and Stripe") // two services named: no preset
	d.mustNotSee("api.github.com")
	for i := 0; i < len(" and Stripe"); i++ {
		d.keys("<backspace>")
	}
	d.mustSee("api.github.com, uploads.github.com")
	// Edit the hosts by hand: renaming no longer overwrites them.
	d.keys("<shift+tab>") // wraps to Allowed hosts
	d.keys("<backspace><backspace><backspace>")
	d.mustSee("api.github.com, uploads.github.")
	d.keys("<tab>").keys("x")
	d.mustSee("api.github.com, uploads.github.")
}

func TestCredentials_CustomHeaderRows(t *testing.T) {
	v := mustOpenVault(t)
	d := start(t, newApp(v, tui.Options{}), 100, 30)
	d.keys("n").keys("Two headers<tab>")
	for i := 0; i < 3; i++ {
		d.keys("<right>")
	}
	d.mustSee("CUSTOM_HEADER", "Header 1 name")
	d.keys("<tab><tab>").keys("x-one<tab>").paste("v1_CANARY").keys("<ctrl+n>")
	d.mustSee("Header 2 name")
	d.keys("x-two<tab>").paste("v2_CANARY").keys("<tab>").paste("api.example.com").keys("<enter>")
	d.mustSee("Added Two headers")
	d.mustNotSee("v1_CANARY", "v2_CANARY")
	c, err := v.FindCredential(context.Background(), "Two headers")
	if err != nil || c.Type != agentkeys.CustomHeader {
		t.Fatalf("credential: %+v %v", c, err)
	}
	// The proxy injects both headers: proves the form sent both.
	r, err := v.RouteByName(context.Background(), "Two headers")
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.OpenSecret(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Headers) != 2 || s.Headers[0].Name != "x-one" || s.Headers[0].Value != "v1_CANARY" || s.Headers[1].Value != "v2_CANARY" {
		t.Fatalf("headers stored: %d", len(s.Headers))
	}
}

// TestCredentials_TallFormFitsAndScrolls: a form taller than an 80×24
// terminal (eight header pairs) keeps the focused field, the message line and
// the header keys on screen.
func TestCredentials_TallFormFitsAndScrolls(t *testing.T) {
	v := mustOpenVault(t)
	d := start(t, newApp(v, tui.Options{}), 80, 24)
	d.keys("n").keys("Many headers<tab><right><right><right>")
	d.mustSee("CUSTOM_HEADER", "ctrl+n add header", "ctrl+s save", "esc back")
	d.keys("<tab><tab>x-h1<tab>").paste("v1_CANARY")
	for i := 2; i <= 8; i++ {
		d.keys("<ctrl+n>").keys("x-h" + strconv.Itoa(i) + "<tab>").paste("v" + strconv.Itoa(i) + "_CANARY")
		d.mustSee("Header "+strconv.Itoa(i)+" value", "ctrl+x drop header")
	}
	d.keys("<tab>")
	d.mustSee("› Allowed hosts", "Secret fields are hidden")
	d.keys("<enter>")
	d.mustSee("› Allowed hosts", "no allowed hosts")
	d.keys("api.example.com<tab>")
	d.mustSee("› Name", "[Many headers")
	if n := len(strings.Split(d.view(), "\n")); n != 24 {
		t.Fatalf("%d lines in a 24-line terminal", n)
	}
	d.keys("<ctrl+s>")
	d.mustSee("Added Many headers")
	d.mustNotSee("_CANARY")
}

func TestCredentials_DuplicateNameShownInPlace(t *testing.T) {
	v := mustOpenVault(t)
	mustCreateCredential(t, v, "Resend", agentkeys.APIKey, nil, agentkeys.Secret{Value: "x"})
	d := start(t, newApp(v, tui.Options{}), 100, 30)
	d.keys("n").keys("resend<tab><tab><tab>").paste("k2").keys("<ctrl+s>")
	d.mustSee("Add a credential", "already")
	creds, _ := v.ListCredentials(context.Background())
	if len(creds) != 1 {
		t.Fatalf("%d credentials", len(creds))
	}
	d.keys("<esc>")
	d.mustSee("Credentials", "1 credential")
}

func TestCredentials_DeleteConfirmation(t *testing.T) {
	v := mustOpenVault(t)
	seed(t, v)
	d := start(t, newApp(v, tui.Options{}), 100, 30)
	// Cursor to "Resend Production" (rows are ordered by name).
	d.keys("/Resend<enter>")
	d.keys("d")
	d.mustSee(`Delete credential "Resend Production"?`, "These agents lose access", "support-bot", "Press y to delete")
	d.mustNotSee("deploy-script")
	// n cancels, nothing written.
	d.keys("n")
	if _, err := v.FindCredential(context.Background(), "Resend Production"); err != nil {
		t.Fatalf("cancel deleted it: %v", err)
	}
	d.mustSee("Resend Production")
	// esc cancels too.
	d.keys("d<esc>")
	if _, err := v.FindCredential(context.Background(), "Resend Production"); err != nil {
		t.Fatalf("esc deleted it: %v", err)
	}
	// y deletes; the agent loses it.
	d.keys("d").keys("y")
	if _, err := v.FindCredential(context.Background(), "Resend Production"); agentkeys.ErrorCode(err) != agentkeys.ENOTFOUND {
		t.Fatalf("want ENOTFOUND after delete, got %v", err)
	}
	d.mustSee("Deleted Resend Production.")
	a, _ := v.FindAgent(context.Background(), "support-bot")
	for _, c := range a.Credentials {
		if c.CredentialName == "Resend Production" {
			t.Fatal("agent still has the deleted credential")
		}
	}
}

// TestCredentials_DeletedElsewhere: deleting a credential that another
// program (the CLI) already removed says so and reloads the list, rather
// than leave a row that can never be deleted.
func TestCredentials_DeletedElsewhere(t *testing.T) {
	v := mustOpenVault(t)
	seed(t, v)
	d := start(t, newApp(v, tui.Options{}), 80, 24)
	d.keys("/Maps<enter>")
	maps, err := v.FindCredential(context.Background(), "Maps")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.DeleteCredential(context.Background(), maps.ID); err != nil {
		t.Fatal(err)
	}
	d.keys("dy")
	d.mustSee("Maps was already deleted", "0 of 4 credentials")
	d.mustNotSee("QUERY_PARAM")
}

func TestCredentials_DeleteUnassigned(t *testing.T) {
	v := mustOpenVault(t)
	seed(t, v)
	d := start(t, newApp(v, tui.Options{}), 100, 30)
	d.keys("/Maps<enter>d")
	d.mustSee(`Delete credential "Maps"?`, "No agent is assigned to it.")
}

func TestCredentials_Details(t *testing.T) {
	v := mustOpenVault(t)
	seed(t, v)
	d := start(t, newApp(v, tui.Options{}), 80, 24)
	d.keys("/stripe<enter><enter>")
	d.mustSee("Stripe test", "BASIC_AUTH", "api.stripe.com, files.stripe.com", "support-bot", "Last used", "never")
	d.mustNotSee(seedCanaries...)
	d.keys("<esc>")
	d.mustSee("1 of 5 credentials")
	// d from the details asks to delete that credential.
	d.keys("<enter>d")
	d.mustSee(`Delete credential "Stripe test"?`, "support-bot")
	d.keys("n")

	// A CUSTOM_HEADER's details name its headers and a QUERY_PARAM's its
	// parameter (read by FindCredential: the list has no names), never a
	// value.
	d.keys("<esc>/github<enter><enter>")
	d.mustSee("GitHub bot", "Headers", "Authorization", "values never shown")
	d.mustNotSee(seedCanaries...)
	d.keys("<esc><esc>/maps<enter><enter>")
	d.mustSee("Maps", "Parameter", "key", "value never shown")
	d.mustNotSee(seedCanaries...)
}

// TestCredentials_Edit: e opens the form on the selected credential (name
// and hosts filled in, value empty = keep); saving changes it in place, the
// agents keep their grants; a half-given value is refused in place.
func TestCredentials_Edit(t *testing.T) {
	v := mustOpenVault(t)
	seed(t, v)
	ctx := context.Background()
	d := start(t, newApp(v, tui.Options{}), 120, 40)
	d.keys("<down><down><down>e") // Resend Production
	d.mustSee("Edit Resend Production", "empty: keep the current value", "API_KEY (fixed)", "api.resend.com")
	d.mustNotSee("Service")
	d.keys("<ctrl+s>") // nothing changed: fine
	d.mustSee("Saved Resend Production")

	d.keys("e")
	d.keys(" EU<tab><tab>")
	d.paste("re_CANARY_NEW")
	d.keys("<tab>")
	d.paste(", api.eu.resend.com")
	d.keys("<ctrl+s>")
	d.mustSee("Saved Resend Production EU", "api.resend.com, api.eu.resend.com", "agents keep their tokens")
	d.mustNotSee("re_CANARY_NEW")
	r, err := v.RouteByName(ctx, "Resend Production EU")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := v.OpenSecret(ctx, r); err != nil || s.Value != "re_CANARY_NEW" {
		t.Fatalf("value after edit: %v", err)
	}
	agents, _ := v.ListAgents(ctx)
	held := false
	for _, a := range agents {
		for _, ac := range a.Credentials {
			held = held || (a.Name == "support-bot" && ac.CredentialName == "Resend Production EU")
		}
	}
	if !held {
		t.Error("the edit took the credential away from its agent")
	}

	// The message goes when the screen changes.
	d.keys("2")
	d.keys("1")
	d.mustNotSee("Saved Resend Production EU")

	// BASIC_AUTH with only a username: refused in place, nothing changed.
	d.keys("<end>")
	d.keys("e")
	d.mustSee("Edit Stripe test")
	d.keys("<tab><tab>")
	d.paste("newuser")
	d.keys("<ctrl+s>")
	d.mustSee("missing password", "leave every value field empty")
	d.keys("<esc>")
	s2, _ := v.RouteByName(ctx, "Stripe test")
	if sec, _ := v.OpenSecret(ctx, s2); sec.Username != "sk_test" {
		t.Error("a refused edit changed the value")
	}
}

// TestHelp_EscCloses: esc closes the full help without leaving the screen.
func TestHelp_EscCloses(t *testing.T) {
	v := mustOpenVault(t)
	seed(t, v)
	d := start(t, newApp(v, tui.Options{}), 120, 40)
	d.keys("?")
	d.mustSee("previous screen")
	d.keys("<esc>")
	d.mustNotSee("previous screen")
	d.mustSee("Resend Production")
}
