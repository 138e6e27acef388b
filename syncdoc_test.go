package agentkeys_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/agentkeys/agentkeys"
)

// TestSyncTypes_NoSecretsPrinted: a doc's secret and the sync settings'
// keys stay out of every fmt verb, also as fields of other values.
func TestSyncTypes_NoSecretsPrinted(t *testing.T) {
	doc := agentkeys.SyncDoc{Kind: agentkeys.SyncKindCredential, ID: "cred_1", Name: "n", Secret: []byte(`{"Value":"canary-secret"}`)}
	set := agentkeys.SyncSettings{Server: "https://s", APIKey: "ak_ws_canarykey", DeviceToken: "akd_canarytoken"}
	pending := agentkeys.SyncPending{Doc: doc}
	for _, v := range []any{doc, &doc, set, &set, pending, []agentkeys.SyncDoc{doc}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(verb, v)
			for _, secret := range []string{"canary-secret", "canarykey", "canarytoken"} {
				if strings.Contains(out, secret) {
					t.Errorf("%s of %T prints %q: %s", verb, v, secret, out)
				}
			}
		}
	}
}
