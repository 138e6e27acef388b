package agentkeys

// WorkspaceStatus is the seed's /workspace/status object, plus where the
// vault lives. Limits of 0 mean unlimited.
type WorkspaceStatus struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Plan   string `json:"plan"`
	Usage  Usage  `json:"usage"`
	Limits Limits `json:"limits"`
	// Mode is "local" (a vault file on this machine) or "remote" (a server).
	Mode string `json:"mode"`
	// Location is the vault file's path or the server's URL.
	Location string `json:"location"`
	// KeySource says where the local vault's root key came from ("keychain",
	// "passphrase", "environment"); empty for remote workspaces.
	KeySource string `json:"keySource,omitempty"`
	// Role is the caller's role in a team server's workspace (the role of
	// the member the API key belongs to); empty for the local vault.
	Role Role `json:"role,omitempty"`
	// BillingStatus is the hosted subscription's status when there is one
	// ("active", "past_due": the last payment failed, "canceled").
	BillingStatus string `json:"billingStatus,omitempty"`
}

// Usage counts what a workspace holds and how much it proxied this month.
type Usage struct {
	Credentials       int   `json:"credentials"`
	Agents            int   `json:"agents"`
	RequestsThisMonth int64 `json:"requestsThisMonth"`
}

// Limits are a plan's caps; 0 means unlimited.
type Limits struct {
	Credentials      int   `json:"credentials"`
	Agents           int   `json:"agents"`
	RequestsPerMonth int64 `json:"requestsPerMonth"`
}

// Workspace modes.
const (
	ModeLocal  = "local"
	ModeRemote = "remote"
)
