// Prints the total process memory, in bytes, that Flink derives for the
// JobManager and the TaskManager from each conf directory given: "<i>
// jobmanager <n>" and "<i> taskmanager <n>" lines ("<i> <component> error
// <message>" when Flink rejects the setup).
// Run as a single-file source program: java -cp <flink lib>/* ProcessMemory.java <dir>...
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
        for (int i = 0; i < args.length; i++) {
            Configuration conf = GlobalConfiguration.loadConfiguration(args[i]);
            try {
                System.out.println(i + " jobmanager " + jobManagerSpec(conf).getTotalProcessMemorySize().getBytes());
            } catch (RuntimeException e) {
                System.out.println(i + " jobmanager error " + e.getMessage().replace('\n', ' '));
            }
            try {
                System.out.println(i + " taskmanager " + TaskExecutorProcessUtils.processSpecFromConfig(conf)
                        .getTotalProcessMemorySize().getBytes());
            } catch (RuntimeException e) {
                System.out.println(i + " taskmanager error " + e.getMessage().replace('\n', ' '));
            }
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
