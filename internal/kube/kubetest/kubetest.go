// Package kubetest runs a throwaway Kubernetes control plane for tests: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler (one binary, built from
// tools/k8stest) and kwok, which keeps one fake node Ready and moves pods to Running. No
// Kubernetes server code is linked into paved: the parts run as processes, started here
// and stopped by PID in the reverse order (the apiserver before etcd, or it hangs retrying).
//
// A test binary calls Main from its TestMain: it starts one control plane for the package
// and each test takes a namespace of its own with Namespace. PAVED_K8STEST_BIN names the
// directory holding the k8stest and kwok binaries (tools/k8stest/build.sh prints it; `make
// test-kube` sets it). Without it the tests skip and say so; with CI=true they fail instead.
//
// Pods do not execute under kwok: there are no logs and no exec. Tests check pod specs and
// set a pod's status themselves (SetPodPhase).
package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// EnvBin is the environment variable naming the directory of the k8stest and kwok binaries.
const EnvBin = "PAVED_K8STEST_BIN"

// ErrNoBinaries: PAVED_K8STEST_BIN is not set or does not hold the binaries.
var ErrNoBinaries = errors.New("kubetest: no control plane binaries: run `make kube-bins` (tools/k8stest/build.sh) " +
	"and set " + EnvBin + " to the directory it prints, or run `make test-kube`")

// startTimeout bounds the start of the whole control plane (about 5 s when idle; the
// machine may be busy building).
const startTimeout = 3 * time.Minute

// NodeName is the fake node kwok manages.
const NodeName = "kwok-node-0"

// Cluster is a running control plane.
type Cluster struct {
	// Kubeconfig is the path of a kubeconfig whose current context is the cluster's admin.
	Kubeconfig string
	// Config and Client speak to the apiserver as system:masters.
	Config *rest.Config
	Client kubernetes.Interface

	dir   string
	procs []*proc // in start order; stopped in reverse
	n     atomic.Int64
}

type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File
}

// Options configure Start.
type Options struct {
	// Bin is the directory of the binaries. Default: $PAVED_K8STEST_BIN.
	Bin string
	// Dir keeps the cluster's files (certificates, etcd data, logs). Default: a new
	// temporary directory, removed by Stop.
	Dir string
}

// Start runs a control plane and waits until the fake node is Ready.
func Start(ctx context.Context, o Options) (c *Cluster, err error) {
	if o.Bin == "" {
		o.Bin = os.Getenv(EnvBin)
	}
	if o.Bin == "" {
		return nil, ErrNoBinaries
	}
	for _, b := range []string{"k8stest", "kwok"} {
		if _, err := os.Stat(filepath.Join(o.Bin, b)); err != nil {
			return nil, fmt.Errorf("%w (%v)", ErrNoBinaries, err)
		}
	}
	ownDir := o.Dir == ""
	if ownDir {
		if o.Dir, err = os.MkdirTemp("", "kubetest-"); err != nil {
			return nil, fmt.Errorf("kubetest: %w", err)
		}
	}
	c = &Cluster{dir: o.Dir}
	defer func() {
		if err != nil {
			c.stop(ownDir)
			c = nil
		}
	}()
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	etcdClient, etcdPeer, apiPort, cmPort, schedPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	if err := c.writeFiles(apiPort); err != nil {
		return nil, err
	}
	k8s := filepath.Join(o.Bin, "k8stest")
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	if err := c.start("etcd", k8s, "etcd", "-data-dir", c.path("etcd"), "-listen-client-url", etcdURL,
		"-listen-peer-url", "http://127.0.0.1:"+strconv.Itoa(etcdPeer)); err != nil {
		return nil, err
	}
	if err := c.waitHTTP(ctx, "etcd", etcdURL+"/health", nil); err != nil {
		return nil, err
	}
	if err := c.start("kube-apiserver", k8s, "kube-apiserver",
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(apiPort), "--advertise-address="+advertiseAddress(),
		"--cert-dir="+c.path("certs"),
		"--token-auth-file="+c.path("tokens.csv"),
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+c.path("sa.pub"),
		"--service-account-signing-key-file="+c.path("sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--enable-priority-and-fairness=false",
		"--v=0"); err != nil {
		return nil, err
	}
	apiURL := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	if err := c.waitHTTP(ctx, "kube-apiserver", apiURL+"/readyz", map[string]string{"Authorization": "Bearer " + adminToken}); err != nil {
		return nil, err
	}
	if err := c.start("kube-controller-manager", k8s, "kube-controller-manager",
		"--kubeconfig="+c.Kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(cmPort),
		"--service-account-private-key-file="+c.path("sa.key"),
		"--root-ca-file="+c.path("certs", "apiserver.crt"),
		"--use-service-account-credentials=false",
		"--v=0"); err != nil {
		return nil, err
	}
	if err := c.start("kube-scheduler", k8s, "kube-scheduler",
		"--kubeconfig="+c.Kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(schedPort), "--v=0"); err != nil {
		return nil, err
	}
	if err := c.start("kwok", filepath.Join(o.Bin, "kwok"),
		"--kubeconfig="+c.Kubeconfig, "--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--cidr=10.244.0.1/24", "--node-ip=10.244.0.1", "--node-port=0"); err != nil {
		return nil, err
	}
	if c.Config, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	c.Config.QPS, c.Config.Burst = 200, 400
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	if err := c.createNode(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

const adminToken = "admintoken"

func (c *Cluster) path(elem ...string) string {
	return filepath.Join(append([]string{c.dir}, elem...)...)
}

// writeFiles writes the service-account key pair, the static token file and the kubeconfig.
func (c *Cluster) writeFiles(apiPort int) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	files := map[string][]byte{
		"sa.key":     pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"sa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"tokens.csv": []byte(adminToken + ",admin,admin,system:masters\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(c.path(name), b, 0o600); err != nil {
			return fmt.Errorf("kubetest: %w", err)
		}
	}
	if err := os.MkdirAll(c.path("certs"), 0o700); err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:" + strconv.Itoa(apiPort), InsecureSkipTLSVerify: true}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: adminToken}
	cfg.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "admin"}
	cfg.CurrentContext = "kubetest"
	c.Kubeconfig = c.path("kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, c.Kubeconfig); err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	return nil
}

func (c *Cluster) start(name, bin string, args ...string) error {
	log, err := os.Create(c.path(name + ".log"))
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group: a ^C of the test reaches us, and we stop the parts in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("kubetest: start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{}), log: log}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	c.procs = append(c.procs, p)
	return nil
}

// waitHTTP polls url until it answers 200, the process exits or ctx ends.
func (c *Cluster) waitHTTP(ctx context.Context, name, url string, header map[string]string) error {
	p := c.procs[len(c.procs)-1]
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("kubetest: %s exited before it was ready:\n%s", name, c.tail(name))
		case <-ctx.Done():
			return fmt.Errorf("kubetest: %s not ready: %w\n%s", name, ctx.Err(), c.tail(name))
		case <-t.C:
		}
	}
}

// tail is the end of a part's log, for errors.
func (c *Cluster) tail(name string) string {
	b, _ := os.ReadFile(c.path(name + ".log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// createNode registers the fake node and waits until kwok reports it Ready.
func (c *Cluster) createNode(ctx context.Context) error {
	rl := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("500"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        NodeName,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels:      map[string]string{"kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux", "type": "kwok"},
		},
		Status: corev1.NodeStatus{Capacity: rl, Allocatable: rl},
	}
	var err error
	for {
		_, err = c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			break
		}
		// The apiserver is ready but its bootstrap (RBAC, priority classes) may still run.
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("kubetest: create node: %w", err)
		}
	}
	for {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err == nil {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					return nil
				}
			}
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("kubetest: node %s not Ready (is kwok running?): %w\n%s", NodeName, err, c.tail("kwok"))
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Stop stops every part, last started first, and removes the cluster's directory when
// Start made it.
func (c *Cluster) Stop() { c.stop(true) }

func (c *Cluster) stop(removeDir bool) {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		p.log.Close()
	}
	c.procs = nil
	if removeDir && c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// Namespace creates a namespace for one test, named after it, and deletes it when the test
// ends. It returns once the namespace's default service account exists (pods are refused
// before).
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%s", c.n.Add(1), dns1123(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = trimDash(name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("kubetest: create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	for {
		if _, err := c.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return name
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			t.Fatalf("kubetest: namespace %s has no default service account: %v", name, err)
		}
	}
}

// SetPodPhase sets a pod's status.phase (and, for a terminal phase, the containers'
// terminated state with exitCode): what a kubelet would report when the pod's
// containers ended. kwok leaves a pod Running forever.
func SetPodPhase(ctx context.Context, client kubernetes.Interface, ns, name string, phase corev1.PodPhase, exitCode int32) error {
	pod, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	pod.Status.Phase = phase
	if phase == corev1.PodSucceeded || phase == corev1.PodFailed {
		now := metav1.Now()
		pod.Status.ContainerStatuses = nil
		for _, ctr := range pod.Spec.Containers {
			pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: ctr.Name, Image: ctr.Image,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exitCode, FinishedAt: now, Reason: string(phase)}},
			})
		}
	}
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("kubetest: set pod %s/%s %s: %w", ns, name, phase, err)
	}
	return nil
}

var (
	global     *Cluster
	skipReason string
)

// Main starts one cluster for the test binary, runs the tests and stops it. Call it from
// TestMain.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := Start(ctx, Options{})
	if errors.Is(err, ErrNoBinaries) && os.Getenv("CI") == "" {
		skipReason = err.Error()
		return m.Run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Stop()
	global = c
	return m.Run()
}

// Get returns the package's cluster started by Main, or skips the test saying why there is none.
func Get(t testing.TB) *Cluster {
	t.Helper()
	if global == nil {
		if skipReason == "" {
			skipReason = "kubetest: no cluster: call kubetest.Main from TestMain"
		}
		t.Skip(skipReason)
	}
	return global
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kubetest: %w", err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// advertiseAddress is a non-loopback address of this machine (the apiserver refuses to
// advertise loopback), else one from TEST-NET-1, which works as nothing connects to it.
func advertiseAddress() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			return ipn.IP.String()
		}
	}
	return "192.0.2.1"
}

func dns1123(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r - 'A' + 'a')
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

func trimDash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '-' {
		s = s[:len(s)-1]
	}
	return s
}
