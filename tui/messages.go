package tui

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/agentkeys/agentkeys"
	tea "github.com/charmbracelet/bubbletea"
)

// Messages. Every vault call runs inside a tea.Cmd and comes back as one of
// these; the root model hands data messages to every screen so they share one
// copy of the credentials and agents.

// credentialsLoadedMsg carries the result of ListCredentials.
type credentialsLoadedMsg struct {
	creds []*agentkeys.Credential
	err   error
}

// agentsLoadedMsg carries the result of ListAgents.
type agentsLoadedMsg struct {
	agents []*agentkeys.Agent
	err    error
}

// statusLoadedMsg carries the result of Status and the proxy probe.
type statusLoadedMsg struct {
	status *agentkeys.WorkspaceStatus
	proxy  ProxyInfo
	sync   *SyncInfo
	err    error
}

// auditLoadedMsg carries a page of audit events. follow is true for a poll
// (AfterSeq) result, false for a fresh load that replaces the rows.
type auditLoadedMsg struct {
	gen    int // which filter generation asked; stale answers are dropped
	events []*agentkeys.AuditEvent
	follow bool
	err    error
}

// auditTickMsg asks the audit screen to poll for new events.
type auditTickMsg struct{ gen int }

// credentialCreatedMsg reports the end of CreateCredential.
type credentialCreatedMsg struct {
	cred *agentkeys.Credential
	err  error
}

// credentialUpdatedMsg reports the end of UpdateCredential.
type credentialUpdatedMsg struct {
	cred *agentkeys.Credential
	err  error
}

// credentialFoundMsg carries one credential read by FindCredential for the
// details view: with the header or parameter names a list leaves out.
type credentialFoundMsg struct {
	cred *agentkeys.Credential
	id   string // the credential asked for
	err  error
}

// credentialDeletedMsg reports the end of DeleteCredential.
type credentialDeletedMsg struct {
	name string
	err  error
}

// agentCreatedMsg reports the end of CreateAgent.
type agentCreatedMsg struct {
	agent *agentkeys.Agent
	err   error
}

// agentDeletedMsg reports the end of DeleteAgent.
type agentDeletedMsg struct {
	name string
	err  error
}

// grantCreatedMsg reports the end of AssignCredential. grant.ProxyToken is
// the only copy of the token; the agents screen shows it once and drops it.
type grantCreatedMsg struct {
	agentName, credName string
	grant               *agentkeys.Grant
	err                 error
}

// revokedMsg reports the end of RevokeCredential.
type revokedMsg struct {
	agentName, credName string
	err                 error
}

// clipboardMsg reports an OSC 52 copy.
type clipboardMsg struct{ err error }

// changed is implemented by messages after which the credential and agent
// lists must be reloaded: after a write, and after a NOT_FOUND, which says
// another program (the CLI, another TUI) changed the vault since they loaded.
type changed interface{ changesData() bool }

func reloadAfter(err error) bool {
	return err == nil || agentkeys.ErrorCode(err) == agentkeys.ENOTFOUND
}

func (m credentialCreatedMsg) changesData() bool { return reloadAfter(m.err) }
func (m credentialDeletedMsg) changesData() bool { return reloadAfter(m.err) }
func (m credentialUpdatedMsg) changesData() bool { return reloadAfter(m.err) }
func (m agentCreatedMsg) changesData() bool      { return reloadAfter(m.err) }
func (m agentDeletedMsg) changesData() bool      { return reloadAfter(m.err) }
func (m grantCreatedMsg) changesData() bool      { return reloadAfter(m.err) }
func (m revokedMsg) changesData() bool           { return reloadAfter(m.err) }

// callTimeout bounds each vault call so a stuck remote never freezes a
// screen for good; the error is shown in place.
const callTimeout = 30 * time.Second

// backend runs the vault calls. It holds the vault and the context the app
// runs under; every method returns a tea.Cmd and never touches the vault
// before the command runs.
type backend struct {
	ctx   context.Context
	vault agentkeys.Vault
	opts  *Options
	// role is the caller's role in a team server's workspace: from
	// Options.Role, then from each Status; nil for the local vault.
	role atomic.Pointer[agentkeys.Role]
}

// may reports whether the caller's role allows p: screens hide the actions
// it does not (the server refuses them anyway). Until the role is known,
// and on the local vault, everything is shown.
func (b *backend) may(p agentkeys.Permission) bool {
	r := b.role.Load()
	return r == nil || *r == "" || agentkeys.Can(*r, p)
}

func (b *backend) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, callTimeout)
}

func (b *backend) loadCredentials() tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := b.call()
		defer cancel()
		creds, err := b.vault.ListCredentials(ctx)
		return credentialsLoadedMsg{creds: safeCredentials(creds), err: err}
	}
}

func (b *backend) loadAgents() tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := b.call()
		defer cancel()
		agents, err := b.vault.ListAgents(ctx)
		return agentsLoadedMsg{agents: safeAgents(agents), err: err}
	}
}

func (b *backend) loadStatus() tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := b.call()
		defer cancel()
		st, err := b.vault.Status(ctx)
		if err == nil && st != nil {
			role := st.Role
			b.role.Store(&role)
		}
		msg := statusLoadedMsg{status: safeStatus(st), err: err}
		if b.opts.ProxyStatus != nil {
			msg.proxy = b.opts.ProxyStatus(ctx)
		}
		if b.opts.SyncStatus != nil {
			si := b.opts.SyncStatus(ctx)
			msg.sync = &si
		}
		return msg
	}
}

func (b *backend) loadAudit(gen int, f agentkeys.AuditFilter, follow bool) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := b.call()
		defer cancel()
		events, err := b.vault.ListAudit(ctx, f)
		return auditLoadedMsg{gen: gen, events: safeAudit(events), follow: follow, err: err}
	}
}

func (b *backend) updateCredential(id string, upd *agentkeys.CredentialUpdate) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := b.call()
		defer cancel()
		c, err := b.vault.UpdateCredential(ctx, id, upd)
		return credentialUpdatedMsg{cred: c, err: err}
	}
}

func (b *backend) findCredential(id string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := b.call()
		defer cancel()
		c, err := b.vault.FindCredential(ctx, id)
		return credentialFoundMsg{cred: safeCredential(c), id: id, err: err}
	}
}

func (b *backend) createCredential(in *agentkeys.CredentialInput) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := b.call()
		defer cancel()
		c, err := b.vault.CreateCredential(ctx, in)
		return credentialCreatedMsg{cred: safeCredential(c), err: err}
	}
}

func (b *backend) deleteCredential(id, name string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := b.call()
		defer cancel()
		return credentialDeletedMsg{name: name, err: b.vault.DeleteCredential(ctx, id)}
	}
}

func (b *backend) createAgent(name string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := b.call()
		defer cancel()
		a, err := b.vault.CreateAgent(ctx, name)
		return agentCreatedMsg{agent: safeAgent(a), err: err}
	}
}

func (b *backend) deleteAgent(id, name string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := b.call()
		defer cancel()
		return agentDeletedMsg{name: name, err: b.vault.DeleteAgent(ctx, id)}
	}
}

func (b *backend) assign(agent *agentkeys.Agent, cred *agentkeys.Credential) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := b.call()
		defer cancel()
		g, err := b.vault.AssignCredential(ctx, agent.ID, cred.ID)
		return grantCreatedMsg{agentName: agent.Name, credName: cred.Name, grant: g, err: err}
	}
}

func (b *backend) revoke(agentID, agentName, credID, credName string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := b.call()
		defer cancel()
		return revokedMsg{agentName: agentName, credName: credName, err: b.vault.RevokeCredential(ctx, agentID, credID)}
	}
}
