package nodeagent

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
)

// ExecRuntime runs a container's command and args as they are, after
// Kubernetes-style $(VAR) expansion. Every declared container port gets a
// free local port, passed as PORT_<containerPort> in the environment (and so
// usable as $(PORT_8080) in args). It is the runtime for generic programs;
// Flink has its own.
type ExecRuntime struct{}

// Prepare implements Runtime.
func (ExecRuntime) Prepare(ctx context.Context, c Container) (*Process, error) {
	argv := append(append([]string{}, c.Spec.Command...), c.Spec.Args...)
	if len(argv) == 0 {
		return nil, fmt.Errorf("container %s: no command", c.Spec.Name)
	}
	env := map[string]string{}
	for k, v := range c.Env {
		env[k] = v
	}
	ports := map[int32]int32{}
	for _, p := range c.Spec.Ports {
		local, err := FreePort()
		if err != nil {
			return nil, err
		}
		ports[p.ContainerPort] = int32(local)
		env[fmt.Sprintf("PORT_%d", p.ContainerPort)] = fmt.Sprint(local)
	}
	for i := range argv {
		argv[i] = expand(argv[i], env)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return &Process{Cmd: cmd, Ports: ports}, nil
}

// expand replaces $(NAME) with env values, as the kubelet does.
func expand(s string, env map[string]string) string {
	for k, v := range env {
		s = strings.ReplaceAll(s, "$("+k+")", v)
	}
	return s
}

// FreePort asks the kernel for a free loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
