package dashboard

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
)

// Settings → Webhooks: the endpoints, an endpoint's page with its
// deliveries, and the one-time display of a new signing secret. Every
// action is the webhooks API's (PermConfigureWebhooks).

// deliveriesPerPage is how many deliveries an endpoint's page shows.
const deliveriesPerPage = 20

// webhookEvent is one event an endpoint may subscribe to, as a checkbox.
type webhookEvent struct {
	Name, About string
}

// webhookEvents are store.WebhookEvents with what raises each.
var webhookEvents = func() []webhookEvent {
	about := map[string]string{
		store.EventCredentialExpired:      "a credential expired",
		store.EventCredentialExpiringSoon: "a credential expires within 7 days",
		store.EventCredentialError:        "a target refused a credential (401 or 403)",
		store.EventUsageLimitReached:      "the workspace used its requests for the period",
	}
	out := make([]webhookEvent, len(store.WebhookEvents))
	for i, e := range store.WebhookEvents {
		out[i] = webhookEvent{Name: e, About: about[e]}
	}
	return out
}()

// webhookForm is the add or edit form as it was filled in.
type webhookForm struct {
	URL, Description string
	Events           []string
	Enabled          bool
}

// Has reports whether the form subscribes to event e (a checked box).
func (f webhookForm) Has(e string) bool { return slices.Contains(f.Events, e) }

// webhookRow is an endpoint in the list, with its newest delivery.
type webhookRow struct {
	*store.Webhook
	Last *delivery
}

// delivery is a delivery as a row shows it: its status and its latest
// attempt (the payload is never shown).
type delivery struct{ *store.Delivery }

// Latest returns the delivery's latest attempt, or nil before the first.
func (d delivery) Latest() *store.Attempt {
	if len(d.Attempts) == 0 {
		return nil
	}
	return &d.Attempts[len(d.Attempts)-1]
}

func deliveries(ds []*store.Delivery) []delivery {
	out := make([]delivery, len(ds))
	for i, d := range ds {
		out[i] = delivery{d}
	}
	return out
}

type webhooksPage struct {
	Webhooks []webhookRow
	Events   []webhookEvent
	Form     webhookForm
}

type webhookPage struct {
	Webhook    *store.Webhook
	Events     []webhookEvent
	Form       webhookForm
	Deliveries []delivery
	// Older is the before= of the next page ("": none); Paged is set on
	// every page but the first.
	Older string
	Paged bool
}

// secretPage shows an endpoint's new signing secret, once.
type secretPage struct {
	Webhook *store.Webhook
	Rotated bool
}

// webhookNotices are the messages a redirect may ask for (?done=).
var webhookNotices = map[string]string{
	"test":      "Test event queued: its delivery appears below once sent.",
	"redeliver": "Redelivery queued: it appears below as a new delivery.",
	"saved":     "Endpoint saved.",
	"deleted":   "Endpoint deleted.",
}

func webhookPath(id string, rest ...string) string {
	return strings.Join(append([]string{"/api/v1/webhooks/" + url.PathEscape(id)}, rest...), "/")
}

func (d *Dashboard) webhooks(w http.ResponseWriter, r *http.Request, s *session) {
	d.webhooksWith(w, r, s, http.StatusOK, "", webhookForm{Events: store.WebhookEvents})
}

// webhooksWith renders the list with the add form as f (a refused add
// keeps what was typed).
func (d *Dashboard) webhooksWith(w http.ResponseWriter, r *http.Request, s *session, status int, msg string, f webhookForm) {
	var out struct{ Webhooks []*store.Webhook }
	if st, err := d.cfg.API(r, s.actor, "GET", "/api/v1/webhooks", nil, &out); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	rows := make([]webhookRow, len(out.Webhooks))
	for i, h := range out.Webhooks {
		rows[i].Webhook = h
		var ds struct{ Deliveries []*store.Delivery }
		if st, err := d.cfg.API(r, s.actor, "GET", webhookPath(h.ID, "deliveries")+"?limit=1", nil, &ds); err != nil {
			d.failErr(w, r, s, st, err)
			return
		}
		if len(ds.Deliveries) > 0 {
			rows[i].Last = &delivery{ds.Deliveries[0]}
		}
	}
	d.render(w, r, status, "webhooks", s, view{Title: "Webhooks", Current: "settings/webhooks", Error: msg,
		Notice: webhookNotices[r.URL.Query().Get("done")],
		Data:   webhooksPage{Webhooks: rows, Events: webhookEvents, Form: f}})
}

// formEvents returns the checked events, never nil (an edit with no box
// checked must reach the API as [], which it refuses, not as "unchanged").
func formEvents(r *http.Request) []string {
	return append([]string{}, r.PostForm["events"]...)
}

func (d *Dashboard) createWebhook(w http.ResponseWriter, r *http.Request, s *session) {
	f := webhookForm{URL: strings.TrimSpace(r.PostFormValue("url")), Description: r.PostFormValue("description"), Events: formEvents(r)}
	var out struct{ Webhook *store.Webhook }
	in := map[string]any{"url": f.URL, "events": f.Events, "description": f.Description}
	if _, err := d.cfg.API(r, s.actor, "POST", "/api/v1/webhooks", in, &out); err != nil {
		d.webhooksWith(w, r, s, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), agentkeys.ErrorMessage(err), f)
		return
	}
	d.render(w, r, http.StatusCreated, "webhook_secret", s, view{Title: "Webhook signing secret", Current: "settings/webhooks",
		Data: secretPage{Webhook: out.Webhook}})
}

func (d *Dashboard) webhook(w http.ResponseWriter, r *http.Request, s *session) {
	d.webhookWith(w, r, s, http.StatusOK, "", nil)
}

// webhookWith renders an endpoint's page; f, when set, is a refused edit
// as it was typed.
func (d *Dashboard) webhookWith(w http.ResponseWriter, r *http.Request, s *session, status int, msg string, f *webhookForm) {
	id := r.PathValue("id")
	var h struct{ Webhook *store.Webhook }
	if st, err := d.cfg.API(r, s.actor, "GET", webhookPath(id), nil, &h); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	q := url.Values{"limit": {"21"}}
	before := r.URL.Query().Get("before")
	if before != "" {
		q.Set("before", before)
	}
	var ds struct{ Deliveries []*store.Delivery }
	if st, err := d.cfg.API(r, s.actor, "GET", webhookPath(id, "deliveries")+"?"+q.Encode(), nil, &ds); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	p := webhookPage{Webhook: h.Webhook, Events: webhookEvents, Deliveries: deliveries(ds.Deliveries), Paged: before != "",
		Form: webhookForm{URL: h.Webhook.URL, Description: h.Webhook.Description, Events: h.Webhook.Events, Enabled: h.Webhook.Enabled}}
	if len(p.Deliveries) > deliveriesPerPage {
		p.Deliveries = p.Deliveries[:deliveriesPerPage]
		p.Older = p.Deliveries[deliveriesPerPage-1].ID
	}
	if f != nil {
		p.Form = *f
	}
	d.render(w, r, status, "webhook", s, view{Title: "Webhook " + h.Webhook.URL, Current: "settings/webhooks", Error: msg,
		Notice: webhookNotices[r.URL.Query().Get("done")], Data: p})
}

// updateWebhook saves the edit form: URL, description, events, and
// enabled only when it changed (enabling clears the failure record, which
// saving an unrelated edit must not).
func (d *Dashboard) updateWebhook(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	f := webhookForm{URL: strings.TrimSpace(r.PostFormValue("url")), Description: r.PostFormValue("description"),
		Events: formEvents(r), Enabled: r.PostFormValue("enabled") == "on"}
	var cur struct{ Webhook *store.Webhook }
	if st, err := d.cfg.API(r, s.actor, "GET", webhookPath(id), nil, &cur); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	in := map[string]any{"url": f.URL, "description": f.Description, "events": f.Events}
	if f.Enabled != cur.Webhook.Enabled {
		in["enabled"] = f.Enabled
	}
	if _, err := d.cfg.API(r, s.actor, "PATCH", webhookPath(id), in, nil); err != nil {
		d.webhookWith(w, r, s, agentkeys.StatusForCode(agentkeys.ErrorCode(err)), agentkeys.ErrorMessage(err), &f)
		return
	}
	http.Redirect(w, r, "/settings/webhooks/"+url.PathEscape(id)+"?done=saved", http.StatusSeeOther)
}

func (d *Dashboard) rotateWebhookSecret(w http.ResponseWriter, r *http.Request, s *session) {
	var out struct{ Webhook *store.Webhook }
	if st, err := d.cfg.API(r, s.actor, "POST", webhookPath(r.PathValue("id"), "rotate-secret"), nil, &out); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	d.render(w, r, http.StatusOK, "webhook_secret", s, view{Title: "Webhook signing secret", Current: "settings/webhooks",
		Data: secretPage{Webhook: out.Webhook, Rotated: true}})
}

func (d *Dashboard) testWebhook(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if st, err := d.cfg.API(r, s.actor, "POST", webhookPath(id, "test"), nil, nil); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	http.Redirect(w, r, "/settings/webhooks/"+url.PathEscape(id)+"?done=test", http.StatusSeeOther)
}

func (d *Dashboard) redeliver(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if st, err := d.cfg.API(r, s.actor, "POST", webhookPath(id, "deliveries", url.PathEscape(r.PathValue("deliveryId")), "redeliver"), nil, nil); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	http.Redirect(w, r, "/settings/webhooks/"+url.PathEscape(id)+"?done=redeliver", http.StatusSeeOther)
}

func (d *Dashboard) confirmDeleteWebhook(w http.ResponseWriter, r *http.Request, s *session) {
	var h struct{ Webhook *store.Webhook }
	if st, err := d.cfg.API(r, s.actor, "GET", webhookPath(r.PathValue("id")), nil, &h); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	d.render(w, r, http.StatusOK, "webhook_delete", s, view{Title: "Delete webhook", Current: "settings/webhooks", Data: h.Webhook})
}

func (d *Dashboard) deleteWebhook(w http.ResponseWriter, r *http.Request, s *session) {
	if st, err := d.cfg.API(r, s.actor, "DELETE", webhookPath(r.PathValue("id")), nil, nil); err != nil {
		d.failErr(w, r, s, st, err)
		return
	}
	http.Redirect(w, r, "/settings/webhooks?done=deleted", http.StatusSeeOther)
}
