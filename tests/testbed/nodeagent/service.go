package nodeagent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Resolve plays cluster DNS plus kube-proxy: it maps a Service address seen
// from namespace ns ("name", "name.ns", "name.ns.svc[.cluster.local]") and a
// Service port to 127.0.0.1 and the local port of a ready process behind it.
// It returns ErrNotYet while no backend is ready.
func (a *Agent) Resolve(ns, host string, port int32) (string, int32, error) {
	name := host
	parts := strings.Split(host, ".")
	if len(parts) >= 2 {
		name, ns = parts[0], parts[1]
	}
	if host == "127.0.0.1" || host == "localhost" {
		return host, port, nil
	}
	svc, err := a.svcLister.Services(ns).Get(name)
	if err != nil {
		return "", 0, fmt.Errorf("service %s/%s: %w (%w)", ns, name, err, ErrNotYet)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return "", 0, fmt.Errorf("service %s/%s has no port %d", ns, name, port)
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	ds, err := a.deployLister.Deployments(ns).List(labels.Everything())
	if err != nil {
		return "", 0, err
	}
	for _, d := range ds {
		if len(svc.Spec.Selector) == 0 || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			continue
		}
		target := containerPort(d.Spec.Template.Spec.Containers, sp)
		a.mu.Lock()
		eps := a.endpoints[ns+"/"+d.Name]
		a.mu.Unlock()
		for _, ep := range eps {
			if local, ok := ep[target]; ok {
				return "127.0.0.1", local, nil
			}
		}
	}
	return "", 0, fmt.Errorf("service %s/%s port %d has no ready backend: %w", ns, name, port, ErrNotYet)
}

// containerPort resolves a Service port's targetPort (number or name).
func containerPort(cs []corev1.Container, sp *corev1.ServicePort) int32 {
	if sp.TargetPort.IntVal != 0 {
		return sp.TargetPort.IntVal
	}
	if sp.TargetPort.StrVal != "" {
		for _, c := range cs {
			for _, p := range c.Ports {
				if p.Name == sp.TargetPort.StrVal {
					return p.ContainerPort
				}
			}
		}
	}
	return sp.Port
}

// ServiceProxy returns an HTTP handler that forwards
// /<namespace>/<service>[:<port>]/<path> to the Service's ready backend, so a
// daemon can reach JobManager REST APIs with a URL template such as
// http://127.0.0.1:PORT/{{.Namespace}}/{{.Name}}-rest. The port defaults
// to 8081 (Flink REST).
//
// It also answers CONNECT <service>.<namespace>:<port>, as an HTTP proxy
// in front of cluster DNS and kube-proxy: the bytes pass through untouched,
// so a client talking TLS to a JobManager verifies the JobManager's own
// certificate under the Service's DNS name.
func (a *Agent) ServiceProxy() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			a.tunnel(w, r)
			return
		}
		parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
		if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
			http.Error(w, "want /<namespace>/<service>[:port]/<path>", http.StatusNotFound)
			return
		}
		ns, svc, rest := parts[0], parts[1], ""
		if len(parts) == 3 {
			rest = parts[2]
		}
		port := int32(8081)
		if n, p, ok := strings.Cut(svc, ":"); ok {
			var v int
			if _, err := fmt.Sscanf(p, "%d", &v); err != nil {
				http.Error(w, "bad port", http.StatusBadRequest)
				return
			}
			svc, port = n, int32(v)
		}
		host, local, err := a.Resolve(ns, svc, port)
		if err != nil {
			// What a client sees when a Service has no endpoints.
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		target := &url.URL{Scheme: "http", Host: net.JoinHostPort(host, fmt.Sprint(local))}
		p := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.URL.Path = "/" + rest
				pr.Out.URL.RawPath = ""
				pr.Out.Host = target.Host
			},
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				http.Error(w, err.Error(), http.StatusBadGateway)
			},
		}
		p.ServeHTTP(w, r)
	})
}

// tunnel serves CONNECT host:port by a TCP connection to the Service's
// ready backend.
func (a *Agent) tunnel(w http.ResponseWriter, r *http.Request) {
	host, p, err := net.SplitHostPort(r.Host)
	if err != nil {
		http.Error(w, "want CONNECT <service>.<namespace>:<port>", http.StatusBadRequest)
		return
	}
	port, err := strconv.ParseInt(p, 10, 32)
	if err != nil || !strings.Contains(host, ".") {
		http.Error(w, "want CONNECT <service>.<namespace>:<port>", http.StatusBadRequest)
		return
	}
	h, local, err := a.Resolve("", host, int32(port))
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	backend, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(r.Context(), "tcp", net.JoinHostPort(h, fmt.Sprint(local)))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		backend.Close()
		http.Error(w, "CONNECT needs HTTP/1.1", http.StatusHTTPVersionNotSupported)
		return
	}
	client, buf, err := hj.Hijack()
	if err != nil {
		backend.Close()
		return
	}
	if _, err := client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		client.Close()
		backend.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(backend, buf); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, backend); done <- struct{}{} }()
	<-done // either side closed: close both, which ends the other copy
	client.Close()
	backend.Close()
	<-done
}

// probe reports readiness: the runtime's check, or every port accepting TCP.
func probe(ctx context.Context, p *Process) bool {
	if p.Ready != nil {
		return p.Ready(ctx)
	}
	for _, local := range p.Ports {
		d := net.Dialer{Timeout: 500 * time.Millisecond}
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(local)))
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}
