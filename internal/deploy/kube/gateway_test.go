package kube_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	"sigs.k8s.io/yaml"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/deploy/kube"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

var (
	gatewayOnce sync.Once
	gatewayErr  error
)

// installGatewayAPI installs the standard HTTPRoute CRD (testdata, from the gateway-api
// module) into the package's API server once, and waits until discovery serves it.
func (e *env) installGatewayAPI() {
	e.t.Helper()
	gatewayOnce.Do(func() { gatewayErr = installCRD(e) })
	if gatewayErr != nil {
		e.t.Fatalf("install the HTTPRoute CRD: %v", gatewayErr)
	}
}

func installCRD(e *env) error {
	b, err := os.ReadFile("testdata/gateway.networking.k8s.io_httproutes.yaml")
	if err != nil {
		return err
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(b, &obj.Object); err != nil {
		return err
	}
	dc, err := dynamic.NewForConfig(e.c.Config)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	crds := dc.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	if _, err := crds.Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !gatewayServed(e) {
		if time.Now().After(deadline) {
			return errors.New("discovery does not list gateway.networking.k8s.io/v1 httproutes a minute after the CRD was created")
		}
		<-tick.C
	}
	return nil
}

func gatewayServed(e *env) bool {
	l, err := e.client().Discovery().ServerResourcesForGroupVersion(gatewayv1.GroupVersion.String())
	return err == nil && slices.ContainsFunc(l.APIResources, func(r metav1.APIResource) bool { return r.Name == "httproutes" })
}

func (e *env) gateway() gatewayclient.Interface {
	e.t.Helper()
	gc, err := gatewayclient.NewForConfig(e.c.Config)
	if err != nil {
		e.t.Fatal(err)
	}
	return gc
}

// createRoute creates an HTTPRoute whose rules send their traffic to services (one rule
// each, port 80), and a last rule for /docs to the Service docs that paved must not touch.
func (e *env) createRoute(name string, services ...[]string) *gatewayv1.HTTPRoute {
	e.t.Helper()
	hr := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: name}}
	hr.Spec.ParentRefs = []gatewayv1.ParentReference{{Name: "paved-test-gateway"}}
	for _, svcs := range services {
		var rule gatewayv1.HTTPRouteRule
		for _, s := range svcs {
			rule.BackendRefs = append(rule.BackendRefs, gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(s), Port: ptr(gatewayv1.PortNumber(80))}}})
		}
		hr.Spec.Rules = append(hr.Spec.Rules, rule)
	}
	docs := gatewayv1.HTTPRouteRule{
		Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr(gatewayv1.PathMatchPathPrefix), Value: ptr("/docs")}}},
		BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{Name: "docs", Port: ptr(gatewayv1.PortNumber(8080))}, Weight: ptr(int32(3))}}},
	}
	hr.Spec.Rules = append(hr.Spec.Rules, docs)
	out, err := e.gateway().GatewayV1().HTTPRoutes(e.ns).Create(context.Background(), hr, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// weightWatch records every change of the weights of the first rule of an HTTPRoute, as
// "stable/canary" ("-" for a missing backendRef), through the watch API.
type weightWatch struct {
	mu   sync.Mutex
	seen []string
}

func (e *env) watchWeights(hr *gatewayv1.HTTPRoute, stable, canary string) *weightWatch {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := e.gateway().GatewayV1().HTTPRoutes(e.ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", hr.Name).String(), ResourceVersion: hr.ResourceVersion})
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	ww := &weightWatch{}
	ww.add(hr, stable, canary)
	done := make(chan struct{})
	e.t.Cleanup(func() { cancel(); w.Stop(); <-done })
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if r, ok := ev.Object.(*gatewayv1.HTTPRoute); ok {
				ww.add(r, stable, canary)
			}
		}
	}()
	return ww
}

func (ww *weightWatch) add(hr *gatewayv1.HTTPRoute, stable, canary string) {
	weight := func(name string) string {
		for _, b := range hr.Spec.Rules[0].BackendRefs {
			if string(b.Name) == name {
				if b.Weight == nil {
					return "nil"
				}
				return fmt.Sprint(*b.Weight)
			}
		}
		return "-"
	}
	s := weight(stable) + "/" + weight(canary)
	ww.mu.Lock()
	defer ww.mu.Unlock()
	if n := len(ww.seen); n == 0 || ww.seen[n-1] != s {
		ww.seen = append(ww.seen, s)
	}
}

// waitSeen waits until the watch has seen want (the route is written before Deploy
// returns; its event may come a moment later).
func (ww *weightWatch) waitSeen(t *testing.T, want []string) {
	t.Helper()
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ww.mu.Lock()
		got = slices.Clone(ww.seen)
		ww.mu.Unlock()
		if slices.Equal(got, want) || time.Now().After(deadline) {
			break
		}
		<-tick.C
	}
	if !slices.Equal(got, want) {
		t.Fatalf("route weights (stable/canary) seen:\n  %v\nwant\n  %v", got, want)
	}
}

func ptr[T any](v T) *T { return &v }

// TestCanaryHTTPRoute: with http_route the canary's steps set the route's weights exactly
// (25, 50), the last step gives the canary all the traffic while stable takes the new
// version, then stable has it all again; a failing analysis (Prometheus says 40% errors)
// puts the traffic back on stable before the canary goes. The route's other rule stays.
func TestCanaryHTTPRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.installGatewayAPI()
	feed := newFeeder(t)
	feed.set("gw", deploy.TrackStable, 0)
	feed.set("gw", deploy.TrackCanary, 0)
	hr := e.createRoute("gw-route", []string{"gw"})
	ww := e.watchWeights(hr, "gw", "gw-canary")

	spec := e.spec("gw", deploy.Canary, 4)
	spec.Steps = []int{25, 50, 100}
	spec.Kubernetes.HTTPRoute = "gw-route"
	spec.Analysis = deploy.Analysis{Source: "prometheus", Prometheus: &deploy.Prometheus{URL: feed.promURL}, Interval: time.Second, Count: 1, MinSamples: 5}
	if res, rec := e.deploy(spec, v1); res.Outcome != store.DeploymentSucceeded {
		t.Fatalf("v1: %+v\n%s", res, rec.text())
	}
	ww.waitSeen(t, []string{"1/-", "100/0"})
	if sel := e.selector("gw"); sel[kube.LabelTrack] != deploy.TrackStable {
		t.Errorf("service gw selects %v, want the stable track alone", sel)
	}
	if sel := e.selector("gw-canary"); sel[kube.LabelTrack] != deploy.TrackCanary {
		t.Errorf("service gw-canary selects %v", sel)
	}

	res, rec := e.deploy(spec, v2)
	if res.Outcome != store.DeploymentSucceeded {
		t.Fatalf("v2: %+v\n%s", res, rec.text())
	}
	ww.waitSeen(t, []string{"1/-", "100/0", "75/25", "50/50", "0/100", "100/0"})
	var weights []string
	for _, ev := range rec.find(run.DeploymentStepAdvanced) {
		weights = append(weights, fmt.Sprintf("%d/%d", ev.Deployment.Weights[deploy.TrackStable], ev.Deployment.Weights[deploy.TrackCanary]))
	}
	if want := []string{"75/25", "50/50", "0/100", "100/0"}; !slices.Equal(weights, want) {
		t.Errorf("step events' weights %v, want %v\n%s", weights, want, rec.text())
	}
	if d := e.deployment("gw"); artifactOf(d) != v2 || *d.Spec.Replicas != 4 {
		t.Errorf("after v2 stable runs %d of %s", *d.Spec.Replicas, artifactOf(d))
	}
	e.waitGone("gw-canary")

	feed.set("gw", deploy.TrackCanary, 0.4)
	res, rec = e.deploy(spec, v3)
	if res.Outcome != store.DeploymentRolledBack || !strings.Contains(res.Reason, "error_rate") {
		t.Fatalf("v3: %+v\n%s", res, rec.text())
	}
	ww.waitSeen(t, []string{"1/-", "100/0", "75/25", "50/50", "0/100", "100/0", "75/25", "100/0"})
	e.waitGone("gw-canary")
	if d := e.deployment("gw"); artifactOf(d) != v2 || *d.Spec.Replicas != 4 || d.Status.ReadyReplicas != 4 {
		t.Errorf("after v3 stable runs %d (%d ready) of %s", *d.Spec.Replicas, d.Status.ReadyReplicas, artifactOf(d))
	}
	got, err := e.gateway().GatewayV1().HTTPRoutes(e.ns).Get(context.Background(), "gw-route", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Spec.Rules[1], hr.Spec.Rules[1]) || !reflect.DeepEqual(got.Spec.ParentRefs, hr.Spec.ParentRefs) {
		t.Errorf("the rule paved does not manage changed:\n%+v\nwas\n%+v", got.Spec.Rules[1], hr.Spec.Rules[1])
	}
	if p := got.Spec.Rules[0].BackendRefs[1].Port; p == nil || *p != 80 {
		t.Errorf("the canary's backendRef has port %v, want the stable's 80", p)
	}
}

// TestCanaryHTTPRouteErrors: a route paved cannot drive is refused before anything starts,
// saying what to change.
func TestCanaryHTTPRouteErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.installGatewayAPI()
	e.createRoute("mixed", []string{"web", "legacy"})
	e.createRoute("elsewhere", []string{"other"})
	for _, tc := range []struct{ route, want string }{
		{"missing", "HTTPRoute " + e.ns + "/missing does not exist: create it with a rule whose backendRefs name the Service web"},
		{"mixed", "rule 1 of HTTPRoute " + e.ns + "/mixed sends traffic to the Service legacy as well as to web, and paved manages only web and web-canary"},
		{"elsewhere", "no rule of HTTPRoute " + e.ns + "/elsewhere sends traffic to the Service web"},
	} {
		spec := e.spec("web", deploy.Canary, 2)
		spec.Kubernetes.HTTPRoute = tc.route
		_, err := e.target.Deploy(context.Background(), kube.Request{ID: "dep-" + tc.route, Spec: spec, Artifact: v1}, nil)
		if !errors.Is(err, kube.ErrRoute) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("route %s: %v, want ErrRoute saying %q", tc.route, err, tc.want)
		}
	}
	if _, err := e.client().AppsV1().Deployments(e.ns).Get(context.Background(), "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a deployment started despite the route: %v", err)
	}
}

// TestCanaryHTTPRouteNotServed runs before the parallel tests install the CRD (it is not
// parallel): a route named on a cluster without the Gateway API is a clear error.
func TestCanaryHTTPRouteNotServed(t *testing.T) {
	e := newEnv(t)
	if gatewayServed(e) {
		t.Skip("the Gateway API CRDs were installed by an earlier test of this process")
	}
	spec := e.spec("web", deploy.Canary, 2)
	spec.Kubernetes.HTTPRoute = "web"
	_, err := e.target.Deploy(context.Background(), kube.Request{ID: "dep-1", Spec: spec, Artifact: v1}, nil)
	if !errors.Is(err, kube.ErrNoGatewayAPI) || !strings.Contains(err.Error(), "install the Gateway API CRDs") {
		t.Fatalf("got %v, want ErrNoGatewayAPI saying to install the CRDs", err)
	}
}

func (e *env) waitGone(name string) {
	e.t.Helper()
	waitFor(e.t, "deployment "+name+" deleted", func() bool {
		_, err := e.client().AppsV1().Deployments(e.ns).Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}
