package agentkeys

import (
	"sort"
	"strings"
)

// Preset is a well-known service with the hosts its API lives on.
type Preset struct {
	Service string   // the name --service takes
	Aliases []string // other words in a credential name that recognise it
	// Hosts are the allowlist. An entry with a <placeholder> ("<site>.atlassian.net")
	// is a host the user must fill in: the service runs each customer on
	// a subdomain of a public suffix, where a wildcard would reach every
	// other customer too.
	Hosts []string
}

// Presets are the built-in allowlists for well-known services.
var Presets = []Preset{
	{Service: "anthropic", Aliases: []string{"claude"}, Hosts: []string{"api.anthropic.com"}},
	{Service: "atlassian", Aliases: []string{"jira", "confluence", "bitbucket"}, Hosts: []string{"<site>.atlassian.net", "api.atlassian.com"}},
	{Service: "cloudflare", Hosts: []string{"api.cloudflare.com"}},
	{Service: "github", Hosts: []string{"api.github.com", "uploads.github.com"}},
	{Service: "gitlab", Hosts: []string{"gitlab.com"}},
	{Service: "google-maps", Aliases: []string{"googlemaps", "gmaps"}, Hosts: []string{"maps.googleapis.com"}},
	{Service: "linear", Hosts: []string{"api.linear.app"}},
	{Service: "mailgun", Hosts: []string{"api.mailgun.net", "api.eu.mailgun.net"}},
	{Service: "notion", Hosts: []string{"api.notion.com"}},
	{Service: "openai", Aliases: []string{"chatgpt"}, Hosts: []string{"api.openai.com"}},
	{Service: "resend", Hosts: []string{"api.resend.com"}},
	{Service: "sendgrid", Hosts: []string{"api.sendgrid.com"}},
	{Service: "slack", Hosts: []string{"slack.com", "hooks.slack.com"}},
	{Service: "stripe", Hosts: []string{"api.stripe.com", "files.stripe.com"}},
	{Service: "supabase", Hosts: []string{"<project-ref>.supabase.co"}},
	{Service: "telegram", Hosts: []string{"api.telegram.org"}},
	{Service: "twilio", Hosts: []string{"api.twilio.com", "*.twilio.com"}},
}

// PresetNames returns the service names of all presets, sorted.
func PresetNames() []string {
	names := make([]string, len(Presets))
	for i, p := range Presets {
		names[i] = p.Service
	}
	sort.Strings(names)
	return names
}

// LookupPreset finds a preset by service name or alias, ignoring case,
// spaces, '-' and '_' ("Google Maps" finds google-maps).
func LookupPreset(service string) (Preset, bool) {
	key := squash(service)
	for _, p := range Presets {
		if squash(p.Service) == key {
			return p, true
		}
		for _, a := range p.Aliases {
			if squash(a) == key {
				return p, true
			}
		}
	}
	return Preset{}, false
}

// RecognisePreset finds the one preset whose service name or alias appears
// as a word (or two adjacent words) in a credential name: "Resend
// Production" is resend, "Google Maps key" is google-maps. It reports false
// when none or more than one preset is named.
func RecognisePreset(credentialName string) (Preset, bool) {
	words := strings.FieldsFunc(strings.ToLower(credentialName), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	})
	var found []Preset
	seen := map[string]bool{}
	try := func(w string) {
		if p, ok := LookupPreset(w); ok && !seen[p.Service] {
			seen[p.Service] = true
			found = append(found, p)
		}
	}
	for i, w := range words {
		try(w)
		if i+1 < len(words) {
			try(w + words[i+1])
		}
	}
	if len(found) != 1 {
		return Preset{}, false
	}
	return found[0], true
}

// ResolveAllowedHosts decides a credential's allowlist: the explicit
// patterns when given; else the preset named by service; else the preset
// recognised from the credential's name. Returns EINVALID when the service is
// unknown, a pattern is bad, or no list can be found — saying how to give one.
func ResolveAllowedHosts(explicit []string, service, credentialName string) ([]string, error) {
	if len(explicit) > 0 {
		return ParseAllowedHosts(explicit)
	}
	if strings.TrimSpace(service) != "" {
		p, ok := LookupPreset(service)
		if !ok {
			return nil, Errorf(EINVALID, "unknown service %q: use one of %s, or give allowed hosts instead", service, strings.Join(PresetNames(), ", "))
		}
		return p.allowedHosts()
	}
	if p, ok := RecognisePreset(credentialName); ok {
		return p.allowedHosts()
	}
	return nil, Errorf(EINVALID,
		"credential %q has no allowed hosts: give the hosts it may be sent to (--allow-host api.example.com, repeatable; *.example.com for subdomains) or a known service (--service NAME, one of %s)",
		credentialName, strings.Join(PresetNames(), ", "))
}

// allowedHosts is the preset's list, or EINVALID saying what to fill in
// when it has a placeholder.
func (p Preset) allowedHosts() ([]string, error) {
	for _, h := range p.Hosts {
		if strings.Contains(h, "<") {
			flags := make([]string, len(p.Hosts))
			for i, h := range p.Hosts {
				flags[i] = "--allow-host " + h
			}
			return nil, Errorf(EINVALID,
				"%s is used on your own host: give the allowed hosts with %s filled in (%s)", p.Service, h, strings.Join(flags, " "))
		}
	}
	return ParseAllowedHosts(p.Hosts)
}

func squash(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '_', '.':
			return -1
		}
		return r
	}, strings.ToLower(strings.TrimSpace(s)))
}
