package flinktb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// Entry classes that flink-console.sh runs for each service.
const (
	// MainSession is the JobManager of a session cluster ("jobmanager").
	MainSession = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"
	// MainApplication is the JobManager of an application cluster ("standalone-job").
	MainApplication = "org.apache.flink.container.entrypoint.StandaloneApplicationClusterEntryPoint"
	// MainTaskManager is the TaskManager ("taskmanager").
	MainTaskManager = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"

	bashJavaUtils = "org.apache.flink.runtime.util.bash.BashJavaUtils"
)

// Java17Opts are the --add-exports/--add-opens flags Flink needs on Java 17:
// the env.java.opts.all default that flink-dist's conf/config.yaml ships for
// 1.20 (2.x dropped the first, which is harmless to keep). Command always
// passes them, ahead of env.java.opts.all from the configuration, because a
// ConfigMap-provided configuration usually does not repeat them.
var Java17Opts = []string{
	"--add-exports=java.base/sun.net.util=ALL-UNNAMED",
	"--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
	"--add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED",
	"--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
	"--add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED",
	"--add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED",
	"--add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED",
	"--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
	"--add-opens=java.base/java.lang=ALL-UNNAMED",
	"--add-opens=java.base/java.net=ALL-UNNAMED",
	"--add-opens=java.base/java.io=ALL-UNNAMED",
	"--add-opens=java.base/java.nio=ALL-UNNAMED",
	"--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
	"--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
	"--add-opens=java.base/java.text=ALL-UNNAMED",
	"--add-opens=java.base/java.time=ALL-UNNAMED",
	"--add-opens=java.base/java.util=ALL-UNNAMED",
	"--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
	"--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
	"--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED",
}

// ProcessSpec describes one Flink container to run as a local process.
type ProcessSpec struct {
	// Version is the Flink version (selects the lib/ jars and config file name).
	Version string
	// Args are the container args of the official Flink image, as in a
	// Deployment's container spec: "jobmanager [host [webui-port]] [-D k=v...]",
	// "taskmanager [-D k=v...]" or "standalone-job --job-classname C
	// [--job-id ID] [--fromSavepoint P] [--allowNonRestoredState] [--jars J]
	// [-D k=v...] [job args...]".
	Args []string
	// ConfDir is the mounted configuration (the image's /opt/flink/conf):
	// config.yaml (2.x) or flink-conf.yaml (1.x), and optionally
	// log4j-console.properties. Required.
	ConfDir string
	// UserJars are the jars the image would have in /opt/flink/usrlib. They are
	// linked into WorkDir/usrlib, which Flink finds next to FLINK_LIB_DIR and
	// loads in the user class loader, as in the image. An application
	// cluster's TaskManagers need the same jars: the JobManager names them in
	// the job graph relative to its working directory (the image's WORKDIR is
	// /opt/flink for every container), and the TaskManagers resolve them
	// against theirs.
	UserJars []string
	// LogDir receives the Flink log file (-Dlog.file). Required. Command does
	// not set the process's stdout/stderr; the caller does.
	LogDir string
	// WorkDir is the process's working directory and the FLINK_HOME Command
	// lays out (lib -> the cached jars, usrlib, plugins). Required when
	// UserJars is set; without it FLINK_HOME is the cache directory.
	WorkDir string
	// Env is added to the process environment (after the inherited one and
	// the FLINK_* variables Command sets), like a container's env.
	Env []string
	// Java is the java binary; default $JAVA_HOME/bin/java, else "java".
	Java string
	// JVMArgs are extra JVM options, like the image's JVM_ARGS variable.
	JVMArgs []string
}

// Invocation is what the image's scripts make of container args, before the
// memory settings are derived: the service, its entry class and its program
// arguments.
type Invocation struct {
	// Service is the flink-console.sh service name: standalonesession,
	// taskexecutor or standalonejob.
	Service string
	// MainClass is the entry class for Service.
	MainClass string
	// Args are the program arguments, starting with --configDir.
	Args []string
	// DynamicProperties are the "-D key=value" pairs found in Args, as
	// "key=value"; they take part in deriving the memory settings.
	DynamicProperties []string
}

// ParseArgs maps the official image's container args to an invocation, as
// docker-entrypoint.sh and jobmanager.sh / taskmanager.sh / standalone-job.sh
// do:
//
//	jobmanager [host [webui-port]] rest...  -> StandaloneSessionClusterEntrypoint
//	    --configDir C --executionMode cluster rest... [--host host] [--webui-port port]
//	taskmanager rest...                     -> TaskManagerRunner --configDir C rest...
//	standalone-job rest...                  -> StandaloneApplicationClusterEntryPoint --configDir C rest...
//
// jobmanager.sh takes the first two args as host and web UI port unless they
// are "-D" (here: unless they start with '-', so "-Dk=v" is not taken for a
// host). The scripts then add the memory settings BashJavaUtils derives as
// "-D key=value" pairs (see Command). Job args of
// standalone-job follow its options; Flink's parser stops at the first
// argument it does not know and hands the rest to the job. The image's other commands (help, history-server, or a
// pass-through command) are not supported.
//
// Flink's native Kubernetes mode runs (see ContainerArgs for the bash
// wrapper it puts around them):
//
//	kubernetes-jobmanager.sh kubernetes-session|kubernetes-application rest...
//	    -> KubernetesSessionClusterEntrypoint / KubernetesApplicationClusterEntrypoint rest...
//	       (no --configDir: they read FLINK_CONF_DIR; dynamic configs go first)
//	kubernetes-taskmanager.sh rest...       -> KubernetesTaskExecutorRunner --configDir C rest...
//	       (rest carries Flink's -D pairs, memory included; nothing is added)
func ParseArgs(containerArgs []string, confDir string) (Invocation, error) {
	if len(containerArgs) == 0 {
		return Invocation{}, fmt.Errorf("flink container args are empty; want jobmanager, taskmanager or standalone-job")
	}
	containerArgs, err := ContainerArgs(nil, containerArgs)
	if err != nil {
		return Invocation{}, err
	}
	if len(containerArgs) == 0 {
		return Invocation{}, fmt.Errorf("flink container args are empty; want jobmanager, taskmanager or standalone-job")
	}
	rest := containerArgs[1:]
	var inv Invocation
	switch containerArgs[0] {
	case scriptJobManager:
		if len(rest) == 0 {
			return Invocation{}, fmt.Errorf("%s needs kubernetes-session or kubernetes-application", scriptJobManager)
		}
		switch rest[0] {
		case "kubernetes-session":
			inv.MainClass = MainKubernetesSession
		case "kubernetes-application":
			inv.MainClass = MainKubernetesApplication
		default:
			return Invocation{}, fmt.Errorf("%s %s: want kubernetes-session or kubernetes-application", scriptJobManager, rest[0])
		}
		inv.Service = rest[0]
		inv.Args = append([]string{}, rest[1:]...)
		inv.DynamicProperties = dynamicProperties(rest[1:])
		return inv, nil
	case scriptTaskManager:
		inv.Service, inv.MainClass = "kubernetes-taskmanager", MainKubernetesTaskManager
		inv.Args = []string{"--configDir", confDir}
	case "jobmanager":
		inv.Service, inv.MainClass = "standalonesession", MainSession
		var hostPort []string
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			hostPort = append(hostPort, "--host", rest[0])
			rest = rest[1:]
			if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
				hostPort = append(hostPort, "--webui-port", rest[0])
				rest = rest[1:]
			}
		}
		inv.Args = append([]string{"--configDir", confDir, "--executionMode", "cluster"}, rest...)
		inv.Args = append(inv.Args, hostPort...)
		inv.DynamicProperties = dynamicProperties(rest)
		return inv, nil
	case "taskmanager":
		inv.Service, inv.MainClass = "taskexecutor", MainTaskManager
		inv.Args = []string{"--configDir", confDir}
	case "standalone-job":
		inv.Service, inv.MainClass = "standalonejob", MainApplication
		inv.Args = []string{"--configDir", confDir}
	default:
		return Invocation{}, fmt.Errorf("flink container command %q is not supported; want jobmanager, taskmanager, standalone-job, kubernetes-jobmanager.sh or kubernetes-taskmanager.sh", containerArgs[0])
	}
	inv.Args = append(inv.Args, rest...)
	inv.DynamicProperties = dynamicProperties(rest)
	return inv, nil
}

// dynamicProperties collects "-D key=value" and "-Dkey=value" arguments.
func dynamicProperties(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-D" && i+1 < len(args):
			out = append(out, args[i+1])
			i++
		case strings.HasPrefix(a, "-D") && len(a) > 2:
			out = append(out, a[2:])
		}
	}
	return out
}

// Resources are the memory settings BashJavaUtils derives from the
// configuration (GET_JM_RESOURCE_PARAMS / GET_TM_RESOURCE_PARAMS).
type Resources struct {
	// JVMParams are -Xmx, -Xms, -XX:MaxMetaspaceSize, ...
	JVMParams []string
	// DynamicConfigs are "-D key=value" tokens that pin the derived sizes;
	// the scripts put them in front of the program arguments.
	DynamicConfigs []string
}

// Command returns the command that runs the Flink container described by
// spec, built as the image's scripts would build it:
//
//	java <memory from BashJavaUtils> <JVMArgs> <Java17Opts> <env.java.opts.all>
//	     <env.java.opts.jobmanager|taskmanager> -Dlog.file=<LogDir>/flink-<service>.log
//	     -Dlog4j.configuration[File]=file:<log4j-console.properties>
//	     -classpath <lib jars, sorted> <main class> <dynamic configs> <program args>
//
// (for standalone-job the dynamic configs come after the program args, as
// standalone-job.sh appends them; with job args present, Flink's parser hands
// them to the job, which must tolerate "-D key=value" arguments, as in the
// image),
// with FLINK_CONF_DIR, FLINK_HOME, FLINK_LIB_DIR, FLINK_PLUGINS_DIR and
// FLINK_LOG_DIR set. ctx bounds the build (when the jars are missing) and the
// BashJavaUtils run, not the returned command. The command runs in its own
// process group and gets SIGKILL when the calling thread dies; kill the group
// (-pid) to stop it.
//
// What the image does and Command does not: the entrypoint's rewriting of the
// config file (jobmanager.rpc.address, blob.server.port, FLINK_PROPERTIES;
// with the read-only ConfigMap mount the operator uses, those writes fail in
// the image too), jemalloc, and `eval` of variables inside env.java.opts.
func Command(ctx context.Context, spec ProcessSpec) (*exec.Cmd, error) {
	if spec.ConfDir == "" || spec.LogDir == "" {
		return nil, fmt.Errorf("flink process spec: ConfDir and LogDir are required")
	}
	if len(spec.UserJars) > 0 && spec.WorkDir == "" {
		return nil, fmt.Errorf("flink process spec: WorkDir is required with UserJars")
	}
	inv, err := ParseArgs(spec.Args, spec.ConfDir)
	if err != nil {
		return nil, err
	}
	b, err := Ensure(ctx, spec.Version)
	if err != nil {
		return nil, err
	}
	jars, err := libJars(b.LibDir)
	if err != nil {
		return nil, err
	}
	conf, err := ReadConfig(spec.ConfDir, spec.Version)
	if err != nil {
		return nil, err
	}
	java := javaBinary(spec.Java)
	res, err := DeriveResources(ctx, java, jars, spec.ConfDir, inv)
	if err != nil {
		return nil, err
	}
	home, libDir := filepath.Dir(b.LibDir), b.LibDir
	if spec.WorkDir != "" {
		home = spec.WorkDir
		libDir, err = layoutHome(spec.WorkDir, b.LibDir, spec.UserJars)
		if err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(spec.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("flink process: log dir: %w", err)
	}
	log4j := filepath.Join(spec.ConfDir, Log4jFileName)
	if !fileExists(log4j) {
		log4j = b.Log4jConfig()
	}
	argv := JavaArgs(inv, res, conf, spec, jars, log4j)
	cmd := exec.Command(java, argv...)
	cmd.Dir = spec.WorkDir
	cmd.Env = append(os.Environ(),
		"FLINK_CONF_DIR="+spec.ConfDir,
		"FLINK_HOME="+home,
		"FLINK_LIB_DIR="+libDir,
		"FLINK_PLUGINS_DIR="+filepath.Join(home, "plugins"),
		"FLINK_LOG_DIR="+spec.LogDir,
	)
	cmd.Env = append(cmd.Env, spec.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd, nil
}

// JavaArgs assembles the java arguments (everything after the binary) for an
// invocation, as flink-console.sh does. It is pure; Command supplies the
// inputs.
func JavaArgs(inv Invocation, res Resources, conf map[string]string, spec ProcessSpec, jars []string, log4jConfig string) []string {
	var a []string
	a = append(a, res.JVMParams...)
	a = append(a, spec.JVMArgs...)
	a = append(a, Java17Opts...)
	all := conf["env.java.opts.all"]
	if all == "" {
		all = conf["env.java.opts"] // the pre-1.17 key, still a fallback in 1.20
	}
	a = append(a, strings.Fields(strings.Trim(all, `"`))...)
	role := "env.java.opts.jobmanager"
	if isTaskManager(inv.MainClass) {
		role = "env.java.opts.taskmanager"
	}
	a = append(a, strings.Fields(strings.Trim(conf[role], `"`))...)
	a = append(a,
		"-Dlog.file="+filepath.Join(spec.LogDir, "flink-"+inv.Service+".log"),
		"-Dlog4j.configuration=file:"+log4jConfig,
		"-Dlog4j.configurationFile=file:"+log4jConfig,
		"-Dlogback.configurationFile=file:"+filepath.Join(spec.ConfDir, "logback-console.xml"),
		"-classpath", strings.Join(jars, string(os.PathListSeparator)),
		inv.MainClass,
	)
	if inv.MainClass == MainApplication {
		// standalone-job.sh appends them (ARGS+=...): after job args, which
		// end Flink's option parsing, they reach the job as program args.
		a = append(a, inv.Args...)
		return append(a, res.DynamicConfigs...)
	}
	if inv.MainClass == MainKubernetesTaskManager {
		// kubernetes-taskmanager.sh adds none: Flink put them in the pod's args.
		return append(a, inv.Args...)
	}
	// jobmanager.sh, taskmanager.sh and kubernetes-jobmanager.sh put them first.
	a = append(a, res.DynamicConfigs...)
	return append(a, inv.Args...)
}

// resourceCache remembers BashJavaUtils results by their inputs, so starting
// the same container again does not cost another JVM start.
var resourceCache sync.Map // key string -> Resources

// DeriveResources runs Flink's BashJavaUtils, as config.sh does, to turn the
// memory configuration (e.g. jobmanager.memory.process.size,
// taskmanager.memory.process.size) into JVM options and pinned dynamic
// configs for the invocation's process. Results are cached per process by
// classpath, config file contents, role and dynamic properties.
func DeriveResources(ctx context.Context, java string, jars []string, confDir string, inv Invocation) (Resources, error) {
	command := "GET_JM_RESOURCE_PARAMS"
	if isTaskManager(inv.MainClass) {
		command = "GET_TM_RESOURCE_PARAMS"
	}
	h := sha256.New()
	for _, part := range [][]string{{java, command}, jars, inv.DynamicProperties} {
		fmt.Fprintf(h, "%q\n", part)
	}
	for _, name := range []string{"config.yaml", "flink-conf.yaml"} {
		data, _ := os.ReadFile(filepath.Join(confDir, name))
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
	}
	key := hex.EncodeToString(h.Sum(nil))
	if r, ok := resourceCache.Load(key); ok {
		res := r.(Resources)
		return Resources{JVMParams: slices.Clone(res.JVMParams), DynamicConfigs: slices.Clone(res.DynamicConfigs)}, nil
	}
	args := []string{
		"-Xmx256m", "-XX:TieredStopAtLevel=1", "-Dlog4j2.level=WARN",
		"-classpath", strings.Join(jars, string(os.PathListSeparator)),
		bashJavaUtils, command, "--configDir", confDir,
	}
	for _, p := range inv.DynamicProperties {
		args = append(args, "-D", p)
	}
	cmd := exec.CommandContext(ctx, java, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return Resources{}, fmt.Errorf("derive flink memory settings (%s): %w\n%s", command, err, lastLines(out.String(), 40))
	}
	const prefix = "BASH_JAVA_UTILS_EXEC_RESULT:"
	var results []string
	for _, line := range strings.Split(out.String(), "\n") {
		if r, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			results = append(results, r)
		}
	}
	if len(results) != 2 {
		return Resources{}, fmt.Errorf("derive flink memory settings (%s): want 2 result lines, got %d:\n%s", command, len(results), lastLines(out.String(), 40))
	}
	res := Resources{JVMParams: strings.Fields(results[0]), DynamicConfigs: strings.Fields(results[1])}
	resourceCache.Store(key, res)
	return Resources{JVMParams: slices.Clone(res.JVMParams), DynamicConfigs: slices.Clone(res.DynamicConfigs)}, nil
}

// libJars lists the jars in dir, sorted, as config.sh's constructFlinkClassPath
// does (flink-dist, which would go last, does not exist here).
func libJars(dir string) ([]string, error) {
	jars, err := filepath.Glob(filepath.Join(dir, "*.jar"))
	if err != nil {
		return nil, fmt.Errorf("list flink jars: %w", err)
	}
	if len(jars) == 0 {
		return nil, fmt.Errorf("list flink jars: no jars in %s", dir)
	}
	sort.Strings(jars)
	return jars, nil
}

// layoutHome makes workDir look like the image's FLINK_HOME: lib pointing at
// the cached jars, usrlib holding links to the user jars, and an empty plugins
// directory. It returns the lib path (FLINK_LIB_DIR), whose parent Flink
// searches for usrlib.
func layoutHome(workDir, cachedLib string, userJars []string) (string, error) {
	lib := filepath.Join(workDir, "lib")
	usrlib := filepath.Join(workDir, "usrlib")
	for _, d := range []string{filepath.Join(workDir, "plugins"), usrlib} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", fmt.Errorf("lay out FLINK_HOME: %w", err)
		}
	}
	if target, err := os.Readlink(lib); err != nil || target != cachedLib {
		_ = os.Remove(lib)
		if err := os.Symlink(cachedLib, lib); err != nil {
			return "", fmt.Errorf("lay out FLINK_HOME: %w", err)
		}
	}
	for _, j := range userJars {
		abs, err := filepath.Abs(j)
		if err != nil {
			return "", fmt.Errorf("lay out FLINK_HOME: %w", err)
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("lay out FLINK_HOME: user jar: %w", err)
		}
		link := filepath.Join(usrlib, filepath.Base(abs))
		_ = os.Remove(link)
		if err := os.Symlink(abs, link); err != nil {
			return "", fmt.Errorf("lay out FLINK_HOME: %w", err)
		}
	}
	return lib, nil
}

// javaBinary picks the java executable: explicit, $JAVA_HOME/bin/java, java.
func javaBinary(explicit string) string {
	if explicit != "" {
		return explicit
	}
	if h := os.Getenv("JAVA_HOME"); h != "" {
		if p := filepath.Join(h, "bin", "java"); fileExists(p) {
			return p
		}
	}
	return "java"
}
