// Prints the total process memory, in bytes, that Flink derives for the
// JobManager and the TaskManager from a conf directory: "jobmanager <n>" and
// "taskmanager <n>" lines ("error <message>" when Flink rejects the setup).
// Run as a single-file source program: java -cp <flink lib>/* ProcessMemory.java <dir>
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.GlobalConfiguration;
import org.apache.flink.configuration.JobManagerOptions;
import org.apache.flink.runtime.clusterframework.TaskExecutorProcessUtils;
import org.apache.flink.runtime.jobmanager.JobManagerProcessSpec;
import org.apache.flink.runtime.jobmanager.JobManagerProcessUtils;

public class ProcessMemory {
    public static void main(String[] args) throws Exception {
        Configuration conf = GlobalConfiguration.loadConfiguration(args[0]);
        try {
            System.out.println("jobmanager " + jobManagerSpec(conf).getTotalProcessMemorySize().getBytes());
        } catch (RuntimeException e) {
            System.out.println("jobmanager error " + e.getMessage().replace('\n', ' '));
        }
        try {
            System.out.println("taskmanager " + TaskExecutorProcessUtils.processSpecFromConfig(conf)
                    .getTotalProcessMemorySize().getBytes());
        } catch (RuntimeException e) {
            System.out.println("taskmanager error " + e.getMessage().replace('\n', ' '));
        }
    }

    // Flink 2.x has processSpecFromConfig(conf); 1.x interprets the legacy heap option.
    private static JobManagerProcessSpec jobManagerSpec(Configuration conf) throws Exception {
        try {
            try {
                Method m = JobManagerProcessUtils.class.getMethod("processSpecFromConfig", Configuration.class);
                return (JobManagerProcessSpec) m.invoke(null, conf);
            } catch (NoSuchMethodException e) {
                Method m = JobManagerProcessUtils.class.getMethod(
                        "processSpecFromConfigWithNewOptionToInterpretLegacyHeap", Configuration.class, ConfigOption.class);
                Object legacyHeap = JobManagerOptions.class.getField("JVM_HEAP_MEMORY").get(null);
                return (JobManagerProcessSpec) m.invoke(null, conf, legacyHeap);
            }
        } catch (InvocationTargetException e) {
            throw (e.getCause() instanceof RuntimeException) ? (RuntimeException) e.getCause() : e;
        }
    }
}
