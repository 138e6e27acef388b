package agentkeys

import "context"

type requestIDKey struct{}

// WithRequestID returns ctx carrying the id of the request being served
// (the X-Agentkeys-Request-Id every answer has), so that stores and loggers
// below the handler can name it.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id ctx carries, or "" when it carries none.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
