package httpstream

import "context"

type holderKey struct{}

func withHolder(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, holderKey{}, addr)
}

func holderOf(ctx context.Context) string {
	s, _ := ctx.Value(holderKey{}).(string)
	return s
}
