package mcp

import (
	"encoding/json"

	"github.com/agentkeys/agentkeys"
)

// Output schemas, written by hand so they say exactly what the handlers
// return (the server validates every structured result against them).

type obj = map[string]any

func str(desc string) obj { return obj{"type": "string", "description": desc} }

func strArray(desc string) obj {
	return obj{"type": "array", "items": obj{"type": "string"}, "description": desc}
}

func dateTime(desc string) obj {
	return obj{"type": "string", "format": "date-time", "description": desc}
}

func object(props obj, required ...string) obj {
	if required == nil {
		required = []string{}
	}
	return obj{"type": "object", "properties": props, "required": required}
}

// credentialSchema describes agentkeys.Credential as JSON.
func credentialSchema() obj {
	return object(obj{
		"id":           str("Credential id (cred_…)."),
		"name":         str("Credential name, unique in the vault (case-insensitively)."),
		"type":         obj{"type": "string", "enum": agentkeys.CredentialTypeNames(), "description": "How the credential is injected."},
		"allowedHosts": strArray("Hosts the credential may be sent to (exact hosts, host:port, or *.suffix)."),
		"createdAt":    dateTime("When the credential was created."),
		"updatedAt":    dateTime("When the credential was last changed."),
		"lastUsedAt":   dateTime("When a proxied request last used it (absent if never)."),
	}, "id", "name", "type", "allowedHosts", "createdAt", "updatedAt")
}

// agentSchema describes agentkeys.Agent as JSON.
func agentSchema() obj {
	return object(obj{
		"id":        str("Agent id (agent_…)."),
		"name":      str("Agent name, unique in the vault (case-insensitively)."),
		"createdAt": dateTime("When the agent was created."),
		"credentials": obj{
			"type":        "array",
			"description": "Credentials assigned to the agent (their proxy tokens are never listed).",
			"items": object(obj{
				"credentialId":   str("Credential id."),
				"credentialName": str("Credential name."),
				"assignedAt":     dateTime("When the credential was assigned (the current token issued)."),
				"lastUsedAt":     dateTime("When the agent last used it through the proxy (absent if never)."),
			}, "credentialId", "credentialName", "assignedAt"),
		},
	}, "id", "name", "createdAt", "credentials")
}

// grantSchema describes one assignment with its proxy token.
func grantSchema() obj {
	return object(obj{
		"proxyToken":     str("The proxy token (pxr_…). Shown only now: agentkeys keeps only its hash. It is not the credential value."),
		"agentId":        str("Agent id."),
		"agentName":      str("Agent name."),
		"credentialId":   str("Credential id."),
		"credentialName": str("Credential name."),
		"allowedHosts":   strArray("Hosts requests with this token may go to."),
		"createdAt":      dateTime("When the token was issued."),
		"replaced":       obj{"type": "boolean", "description": "True when the agent already had this credential: its previous token stopped working."},
	}, "proxyToken", "agentId", "agentName", "credentialId", "credentialName", "allowedHosts", "createdAt", "replaced")
}

func rawSchema(s obj) json.RawMessage {
	b, err := json.Marshal(s)
	if err != nil {
		panic("mcp: bad schema: " + err.Error()) // static data; cannot happen
	}
	return b
}
