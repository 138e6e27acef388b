package hostpolicy

import (
	"testing"

	"github.com/agentkeys/agentkeys"
)

func TestCheckWildcards(t *testing.T) {
	refused := []string{"*.co.uk", "*.com.au", "*.co.jp", "*.org.uk:443", "*.kyoto.jp",
		// the private part of the list: anyone can get a subdomain there
		"*.herokuapp.com", "*.vercel.app", "*.workers.dev", "*.github.io", "*.ngrok.io",
		"*.cloudfront.net", "*.supabase.co", "*.netlify.app", "*.pages.dev",
		"*.s3.amazonaws.com", "*.appspot.com", "*.blogspot.com", "*.fly.dev:443", "*.azurewebsites.net"}
	for _, p := range refused {
		if err := CheckWildcards([]string{"api.example.com", p}); agentkeys.ErrorCode(err) != agentkeys.EINVALID {
			t.Errorf("CheckWildcards(%q) = %v, want EINVALID", p, err)
		}
	}
	allowed := []string{"*.example.co.uk", "*.example.com", "api.co.uk", "acme.atlassian.net", "abc.supabase.co", "*.twilio.com",
		"127.0.0.1:8080", "*.example.com:8443", "myapp.herokuapp.com", "*.myapp.herokuapp.com", "acme.github.io", "*.amazonaws.com"}
	if err := CheckWildcards(allowed); err != nil {
		t.Errorf("CheckWildcards(%q) = %v, want nil", allowed, err)
	}
	for _, pr := range agentkeys.Presets {
		if err := CheckWildcards(pr.Hosts); err != nil {
			t.Errorf("preset %s: %v", pr.Service, err)
		}
	}
}
