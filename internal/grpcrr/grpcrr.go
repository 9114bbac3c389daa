// Package grpcrr spreads a gRPC client's calls over several servers with
// client-side round robin: a client dials Target(addrs...), a target of
// the scheme this package registers with gRPC when it is imported, and
// gRPC connects to every address and sends each call to the next ready
// one. A server that goes away is skipped until it is back.
//
// consentry fleet and load take several collector addresses this way,
// and the cluster tests drive two collectors with it. An SDK embedded in
// an app does the same when its binary imports this package and its
// Endpoint is such a target; apps behind an L7 proxy need nothing.
package grpcrr

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/resolver"
)

// Scheme is the target scheme this package resolves.
const Scheme = "consentry-rr"

// serviceConfig picks round robin over the resolved addresses.
const serviceConfig = `{"loadBalancingConfig": [{"round_robin": {}}]}`

// Target returns the gRPC target that spreads calls over addrs
// ("host:port" each) round robin.
func Target(addrs ...string) string { return Scheme + ":///" + strings.Join(addrs, ",") }

// Addrs returns the addresses of a target of several comma-separated
// "host:port" ("a:1,b:2"), as a command-line flag takes them: the target
// that balances over them if there are several, else the address.
func Addrs(list string) string {
	addrs := strings.Split(list, ",")
	for i := range addrs {
		addrs[i] = strings.TrimSpace(addrs[i])
	}
	if len(addrs) == 1 {
		return addrs[0]
	}
	return Target(addrs...)
}

// gRPC's registry of resolvers is filled at init, as its own resolvers
// are: registering later could race with a dial.
func init() { resolver.Register(builder{}) }

// builder resolves a target to the fixed addresses it lists.
type builder struct{}

func (builder) Scheme() string { return Scheme }

func (builder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	list := strings.TrimPrefix(target.Endpoint(), "/")
	var addrs []resolver.Address
	for a := range strings.SplitSeq(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, resolver.Address{Addr: a})
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("grpcrr: target %q names no address", target.URL.String())
	}
	sc := cc.ParseServiceConfig(serviceConfig)
	if sc.Err != nil {
		return nil, fmt.Errorf("grpcrr: %w", sc.Err)
	}
	if err := cc.UpdateState(resolver.State{Addresses: addrs, ServiceConfig: sc}); err != nil {
		return nil, fmt.Errorf("grpcrr: %w", err)
	}
	return nopResolver{}, nil
}

// nopResolver has nothing to resolve again: the addresses are fixed.
type nopResolver struct{}

func (nopResolver) ResolveNow(resolver.ResolveNowOptions) {}
func (nopResolver) Close()                                {}
