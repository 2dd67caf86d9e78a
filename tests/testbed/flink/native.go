package flinktb

import (
	"fmt"
	"path"
	"strings"
)

// Entry classes of Flink's native Kubernetes mode (flink-kubernetes), which
// flink-console.sh runs for the services kubernetes-jobmanager.sh and
// kubernetes-taskmanager.sh name.
const (
	// MainKubernetesSession is the JobManager of a native session cluster
	// ("kubernetes-jobmanager.sh kubernetes-session").
	MainKubernetesSession = "org.apache.flink.kubernetes.entrypoint.KubernetesSessionClusterEntrypoint"
	// MainKubernetesApplication is the JobManager of a native application
	// cluster ("kubernetes-jobmanager.sh kubernetes-application").
	MainKubernetesApplication = "org.apache.flink.kubernetes.entrypoint.KubernetesApplicationClusterEntrypoint"
	// MainKubernetesTaskManager is a TaskManager whose pod Flink's
	// KubernetesResourceManagerDriver created ("kubernetes-taskmanager.sh").
	MainKubernetesTaskManager = "org.apache.flink.kubernetes.taskmanager.KubernetesTaskExecutorRunner"
)

// The scripts flink-kubernetes puts into the pods it builds
// (Constants.KUBERNETES_JOB_MANAGER_SCRIPT_PATH / ..._TASK_MANAGER_...).
const (
	scriptJobManager  = "kubernetes-jobmanager.sh"
	scriptTaskManager = "kubernetes-taskmanager.sh"
)

// ContainerArgs turns a Flink container's command and args into the words
// ParseArgs understands, the way the image runs them: the implicit or
// explicit /docker-entrypoint.sh is dropped, and the bash wrapper Flink's
// native mode uses (KubernetesUtils.getStartCommandWithBashWrapper: command
// ["/docker-entrypoint.sh"], args ["bash", "-c", "kubernetes-taskmanager.sh
// -Dk='v' … -D k=v …"]) is unwrapped with shell quoting rules. A script
// named by path ($FLINK_HOME/bin/kubernetes-jobmanager.sh) is named by its
// base name, as the image has the scripts on its PATH.
func ContainerArgs(command, args []string) ([]string, error) {
	words := append(append([]string{}, command...), args...)
	if len(words) > 0 && path.Base(words[0]) == "docker-entrypoint.sh" {
		words = words[1:]
	}
	if len(words) >= 3 && (words[0] == "bash" || words[0] == "/bin/bash" || words[0] == "sh" || words[0] == "/bin/sh") && words[1] == "-c" {
		script := strings.NewReplacer("${FLINK_HOME}", "/opt/flink", "$FLINK_HOME", "/opt/flink").Replace(words[2])
		inner, err := SplitShell(script)
		if err != nil {
			return nil, fmt.Errorf("flink container: %s -c %q: %w", words[0], words[2], err)
		}
		words = inner
	}
	if len(words) > 0 {
		switch base := path.Base(words[0]); base {
		case scriptJobManager, scriptTaskManager:
			words[0] = base
		}
	}
	return words, nil
}

// SplitShell splits a command line into words as a POSIX shell would for
// the commands Flink generates: blanks separate words; single quotes,
// double quotes and backslashes quote. Variables and other expansions are
// not supported and are an error, so nothing is silently misread.
func SplitShell(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				switch {
				case s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0:
					i++
					cur.WriteByte(s[i])
				case s[i] == '$' || s[i] == '`':
					return nil, fmt.Errorf("shell expansion %q inside double quotes is not supported", s[i:])
				default:
					cur.WriteByte(s[i])
				}
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated double quote")
			}
			inWord = true
		case c == '\\':
			if i+1 < len(s) {
				i++
				if s[i] != '\n' {
					cur.WriteByte(s[i])
				}
			}
			inWord = true
		case strings.IndexByte("$`;&|<>()*?[{~", c) >= 0:
			return nil, fmt.Errorf("shell syntax %q is not supported", s[i:])
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// isTaskManager reports whether an entry class runs a TaskManager.
func isTaskManager(mainClass string) bool {
	return mainClass == MainTaskManager || mainClass == MainKubernetesTaskManager
}
