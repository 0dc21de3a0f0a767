package kube

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestSetWeights covers the shapes of rules the route test in the cluster does not: what
// is added, what is kept and what is refused. No cluster needed.
func TestSetWeights(t *testing.T) {
	t.Parallel()
	ref := func(name string, port int32, opts ...func(*gatewayv1.HTTPBackendRef)) gatewayv1.HTTPBackendRef {
		b := gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
			Name: gatewayv1.ObjectName(name), Port: ptr(gatewayv1.PortNumber(port))}}}
		for _, o := range opts {
			o(&b)
		}
		return b
	}
	inNS := func(ns string) func(*gatewayv1.HTTPBackendRef) {
		return func(b *gatewayv1.HTTPBackendRef) { b.Namespace = ptr(gatewayv1.Namespace(ns)) }
	}
	kind := func(k string) func(*gatewayv1.HTTPBackendRef) {
		return func(b *gatewayv1.HTTPBackendRef) {
			b.Group, b.Kind = ptr(gatewayv1.Group("example.io")), ptr(gatewayv1.Kind(k))
		}
	}
	filtered := func(b *gatewayv1.HTTPBackendRef) {
		b.Filters = []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier,
			RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-Track", Value: "stable"}}}}}
	}
	show := func(hr *gatewayv1.HTTPRoute) string {
		var rules []string
		for _, r := range hr.Spec.Rules {
			var refs []string
			for _, b := range r.BackendRefs {
				s := fmt.Sprintf("%s:%d", b.Name, *b.Port)
				if b.Namespace != nil {
					s = string(*b.Namespace) + "/" + s
				}
				if b.Weight != nil {
					s += fmt.Sprintf("=%d", *b.Weight)
				}
				if len(b.Filters) > 0 {
					s += "+filter"
				}
				refs = append(refs, s)
			}
			rules = append(rules, strings.Join(refs, ","))
		}
		return strings.Join(rules, " | ")
	}
	for _, tc := range []struct {
		name  string
		rules [][]gatewayv1.HTTPBackendRef
		want  string // the rules after 75/25, or the error's text
	}{
		{"canary added on stable's port", [][]gatewayv1.HTTPBackendRef{{ref("web", 8080, filtered)}},
			"web:8080=75+filter,web-canary:8080=25"},
		{"both there", [][]gatewayv1.HTTPBackendRef{{ref("web-canary", 80), ref("web", 80)}},
			"web-canary:80=25,web:80=75"},
		{"stable added when only the canary is named", [][]gatewayv1.HTTPBackendRef{{ref("web-canary", 81)}},
			"web-canary:81=25,web:81=75"},
		{"own namespace spelled out", [][]gatewayv1.HTTPBackendRef{{ref("web", 80, inNS("shop"))}},
			"shop/web:80=75,web-canary:80=25"},
		{"other rules kept", [][]gatewayv1.HTTPBackendRef{{ref("docs", 80)}, {ref("web", 80)}, {ref("web", 80, inNS("other"))}},
			"docs:80 | web:80=75,web-canary:80=25 | other/web:80"},
		{"every rule naming web", [][]gatewayv1.HTTPBackendRef{{ref("web", 80)}, {ref("web", 80), ref("web-canary", 80)}},
			"web:80=75,web-canary:80=25 | web:80=75,web-canary:80=25"},
		{"foreign service beside web", [][]gatewayv1.HTTPBackendRef{{ref("web", 80), ref("legacy", 80)}},
			"rule 1 of HTTPRoute shop/r sends traffic to the Service legacy as well as to web"},
		{"web in another namespace beside web", [][]gatewayv1.HTTPBackendRef{{ref("docs", 80)}, {ref("web", 80), ref("web", 80, inNS("other"))}},
			"rule 2 of HTTPRoute shop/r sends traffic to the Service web in namespace other as well"},
		{"another kind beside web", [][]gatewayv1.HTTPBackendRef{{ref("web-canary", 80), ref("bucket", 80, kind("Bucket"))}},
			"sends traffic to the Bucket bucket as well as to web"},
		{"no rule for web", [][]gatewayv1.HTTPBackendRef{{ref("docs", 80)}},
			"no rule of HTTPRoute shop/r sends traffic to the Service web"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hr := &gatewayv1.HTTPRoute{}
			hr.Namespace, hr.Name = "shop", "r"
			for _, refs := range tc.rules {
				hr.Spec.Rules = append(hr.Spec.Rules, gatewayv1.HTTPRouteRule{BackendRefs: refs})
			}
			r := &route{ns: "shop", name: "r", stableSvc: "web", canarySvc: "web-canary"}
			err := r.setWeights(hr, 75, 25)
			got := show(hr)
			if err != nil {
				if !errors.Is(err, ErrRoute) {
					t.Fatalf("error %v is not ErrRoute", err)
				}
				got = err.Error()
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
