package agentkeys

import (
	"context"
	"time"
)

// Decisions recorded on audit events.
const (
	DecisionPending = "pending" // forwarded, outcome not yet written (or the process died mid-request)
	DecisionAllowed = "allowed" // forwarded; Status is the upstream's
	DecisionDenied  = "denied"  // refused by agentkeys before anything was forwarded
	DecisionError   = "error"   // forwarded but the upstream failed (502/504) or the stream broke
	DecisionAdmin   = "admin"   // not a proxied request: an admin action on a server (Action, Actor…, Target)
)

// AuditEvent is one proxied request, allowed or refused. It never holds a
// header value, a body, a query string or a credential value.
type AuditEvent struct {
	ID             string        `json:"id"`
	Seq            int64         `json:"seq"` // store-assigned; increases whenever the row is written or completed
	Time           time.Time     `json:"time"`
	RequestID      string        `json:"requestId"`
	WorkspaceID    string        `json:"workspaceId,omitempty"`
	AgentID        string        `json:"agentId,omitempty"`
	AgentName      string        `json:"agentName,omitempty"`
	CredentialID   string        `json:"credentialId,omitempty"`
	CredentialName string        `json:"credentialName,omitempty"`
	Method         string        `json:"method"`
	Host           string        `json:"host"`
	Path           string        `json:"path"`
	Status         int           `json:"status"`
	Decision       string        `json:"decision"`
	Code           string        `json:"code,omitempty"` // error code when denied or failed
	Duration       time.Duration `json:"-"`
	DurationMs     float64       `json:"durationMs"`
	BytesIn        int64         `json:"bytesIn"`
	BytesOut       int64         `json:"bytesOut"`
	// Admin actions on a server (Decision DecisionAdmin): what was done, by
	// which user, to what. Empty for proxied requests.
	Action      string `json:"action,omitempty"`
	ActorUserID string `json:"actorUserId,omitempty"`
	ActorEmail  string `json:"actorEmail,omitempty"`
	Target      string `json:"target,omitempty"`
}

// AuditFilter selects audit events. Zero fields select everything.
type AuditFilter struct {
	AgentID      string
	CredentialID string
	Status       int
	Decision     string
	// BeforeSeq pages backwards: only events with Seq < BeforeSeq.
	BeforeSeq int64
	// AfterSeq follows the log: only events with Seq > AfterSeq, and then the
	// result is ordered oldest first (otherwise newest first).
	AfterSeq int64
	// Limit caps the result; 0 means DefaultAuditLimit, and no page holds
	// more than MaxAuditLimit events.
	Limit int
	// Since and Until, when not zero, keep the events whose Time is at or
	// after Since and before Until.
	Since, Until time.Time
}

// Audit paging limits, the same for every Vault and front-end.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// AuditLog is the part of the Vault that reads the audit trail.
type AuditLog interface {
	// ListAudit returns events matching f, newest first (oldest first when
	// f.AfterSeq is set).
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)
}
