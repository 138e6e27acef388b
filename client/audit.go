package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/agentkeys/agentkeys"
)

// AuditPage is one page of the audit log.
type AuditPage struct {
	Events []*agentkeys.AuditEvent `json:"events"`
	// NextBefore is the BeforeSeq of the next (older) page; 0 when the
	// server says there is none.
	NextBefore int64 `json:"nextBefore"`
}

// ListAudit implements agentkeys.AuditLog: GET /api/v1/audit with the
// filter as query parameters. Events come newest first, or oldest first when
// f.AfterSeq is set.
func (c *Client) ListAudit(ctx context.Context, f agentkeys.AuditFilter) ([]*agentkeys.AuditEvent, error) {
	p, err := c.AuditPage(ctx, f)
	if err != nil {
		return nil, err
	}
	return p.Events, nil
}

// AuditPage is ListAudit with the server's cursor for the next page.
func (c *Client) AuditPage(ctx context.Context, f agentkeys.AuditFilter) (*AuditPage, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("agentId", f.AgentID)
	set("credentialId", f.CredentialID)
	set("decision", f.Decision)
	if f.Status != 0 {
		set("status", strconv.Itoa(f.Status))
	}
	if f.Limit != 0 {
		set("limit", strconv.Itoa(f.Limit))
	}
	if f.BeforeSeq != 0 {
		set("before", strconv.FormatInt(f.BeforeSeq, 10))
	}
	if f.AfterSeq != 0 {
		set("after", strconv.FormatInt(f.AfterSeq, 10))
	}
	var page AuditPage
	if err := c.call(ctx, http.MethodGet, "/api/v1/audit", q, nil, &page); err != nil {
		return nil, err
	}
	if page.Events == nil {
		page.Events = []*agentkeys.AuditEvent{}
	}
	return &page, nil
}
