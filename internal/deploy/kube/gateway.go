package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// ErrNoGatewayAPI: an environment names an HTTPRoute and the cluster does not serve them.
var ErrNoGatewayAPI = errors.New("kube: the cluster does not serve gateway.networking.k8s.io/v1 HTTPRoutes")

// ErrRoute: the named HTTPRoute cannot carry the canary's weights as it is.
var ErrRoute = errors.New("kube: http_route")

// gatewayInstall is what ErrNoGatewayAPI tells the user to run: the standard channel of the
// release whose client paved is built with.
const gatewayInstall = "kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.4.1/standard-install.yaml"

// route sets the weights of a canary's two Services in the rules of one HTTPRoute that send
// traffic to them, as Argo Rollouts' Gateway API plugin does: the rules that name neither
// are left as they are, and so is everything of a backendRef but its weight.
type route struct {
	c                    gatewayclient.Interface
	ns, name             string
	stableSvc, canarySvc string
}

// httpRoute checks that the cluster serves HTTPRoutes and that the environment's route
// can carry the canary's weights, before anything of the deployment starts.
func (d *deployment) httpRoute(ctx context.Context) (*route, error) {
	k := d.spec.Kubernetes
	gv := gatewayv1.GroupVersion.String()
	list, err := d.c.Discovery().ServerResourcesForGroupVersion(gv)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("kube: discover %s: %w", gv, err)
	}
	if err != nil || !slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == "httproutes" }) {
		return nil, fmt.Errorf("%w: environment %s names the HTTPRoute %s; install the Gateway API CRDs (%s) and a Gateway controller, or remove kubernetes.http_route to split by replicas",
			ErrNoGatewayAPI, d.spec.Environment, k.HTTPRoute, gatewayInstall)
	}
	gc, err := d.t.cfg.Gateway(*k)
	if err != nil {
		return nil, err
	}
	r := &route{c: gc, ns: d.ns, name: k.HTTPRoute, stableSvc: d.name, canarySvc: d.name + "-canary"}
	hr, err := gc.GatewayV1().HTTPRoutes(d.ns).Get(ctx, r.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w: HTTPRoute %s/%s does not exist: create it with a rule whose backendRefs name the Service %s (port 80)", ErrRoute, d.ns, r.name, r.stableSvc)
	}
	if err != nil {
		return nil, fmt.Errorf("kube: get HTTPRoute %s/%s: %w", d.ns, r.name, err)
	}
	if err := r.setWeights(hr, 100, 0); err != nil {
		return nil, err
	}
	return r, nil
}

// set puts the weights on the route, reading it again on a conflict (a Gateway controller
// writes its status, people edit its other rules).
func (r *route) set(ctx context.Context, stable, canary int32) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		hr, err := r.c.GatewayV1().HTTPRoutes(r.ns).Get(ctx, r.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := r.setWeights(hr, stable, canary); err != nil {
			return err
		}
		_, err = r.c.GatewayV1().HTTPRoutes(r.ns).Update(ctx, hr, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !errors.Is(err, ErrRoute) {
		return fmt.Errorf("kube: set the weights of HTTPRoute %s/%s to %s %d, %s %d: %w", r.ns, r.name, r.stableSvc, stable, r.canarySvc, canary, err)
	}
	return err
}

// setWeights changes hr in memory: in every rule that sends traffic to the stable or the
// canary Service, the stable backendRef gets weight stable and the canary's weight canary
// (the canary's backendRef is added, on the stable's port, when missing).
func (r *route) setWeights(hr *gatewayv1.HTTPRoute, stable, canary int32) error {
	managed := 0
	for i := range hr.Spec.Rules {
		rule := &hr.Spec.Rules[i]
		if !r.namesOurs(rule.BackendRefs) {
			continue
		}
		si, ci := -1, -1
		for j, b := range rule.BackendRefs {
			switch {
			case r.isService(b.BackendObjectReference) && string(b.Name) == r.stableSvc:
				si = j
			case r.isService(b.BackendObjectReference) && string(b.Name) == r.canarySvc:
				ci = j
			default:
				// Its share would shift with every step: the weights would not be the step's.
				return r.foreign(i, b.BackendObjectReference)
			}
		}
		managed++
		if si < 0 {
			rule.BackendRefs = append(rule.BackendRefs, backendRef(r.stableSvc, rule.BackendRefs[ci].Port))
			si = len(rule.BackendRefs) - 1
		}
		if ci < 0 {
			rule.BackendRefs = append(rule.BackendRefs, backendRef(r.canarySvc, rule.BackendRefs[si].Port))
			ci = len(rule.BackendRefs) - 1
		}
		rule.BackendRefs[si].Weight = ptr(stable)
		rule.BackendRefs[ci].Weight = ptr(canary)
	}
	if managed == 0 {
		return fmt.Errorf("%w: no rule of HTTPRoute %s/%s sends traffic to the Service %s: add backendRefs: [{name: %s, port: 80}] to the rule of the canary's traffic",
			ErrRoute, r.ns, r.name, r.stableSvc, r.stableSvc)
	}
	return nil
}

// namesOurs says whether a rule's backendRefs name the stable or the canary Service.
func (r *route) namesOurs(refs []gatewayv1.HTTPBackendRef) bool {
	return slices.ContainsFunc(refs, func(b gatewayv1.HTTPBackendRef) bool {
		return r.isService(b.BackendObjectReference) && (string(b.Name) == r.stableSvc || string(b.Name) == r.canarySvc)
	})
}

func (r *route) foreign(rule int, b gatewayv1.BackendObjectReference) error {
	what := "Service " + string(b.Name)
	if !r.isService(b) {
		what = fmt.Sprintf("%s %s", kindOf(b), b.Name)
		if b.Namespace != nil {
			what += " in namespace " + string(*b.Namespace)
		}
	}
	return fmt.Errorf("%w: rule %d of HTTPRoute %s/%s sends traffic to the %s as well as to %s, and paved manages only %s and %s: move that backendRef to a rule of its own",
		ErrRoute, rule+1, r.ns, r.name, what, r.stableSvc, r.stableSvc, r.canarySvc)
}

// isService says whether b is a Service in the route's namespace (the defaults of group,
// kind and namespace).
func (r *route) isService(b gatewayv1.BackendObjectReference) bool {
	return (b.Group == nil || *b.Group == "") && (b.Kind == nil || *b.Kind == "Service") &&
		(b.Namespace == nil || string(*b.Namespace) == r.ns)
}

func kindOf(b gatewayv1.BackendObjectReference) string {
	if b.Kind == nil {
		return "Service"
	}
	return string(*b.Kind)
}

func backendRef(svc string, port *gatewayv1.PortNumber) gatewayv1.HTTPBackendRef {
	if port == nil {
		port = ptr(gatewayv1.PortNumber(80))
	}
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(svc), Port: port},
	}}
}
