// Prints the configuration Flink loads from a conf directory, one
// "key<TAB>value" line per entry, with backslash, tab and newline escaped.
// Run as a single-file source program: java -cp <flink lib>/* LoadConfig.java <dir>
import java.util.Map;
import java.util.TreeMap;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.GlobalConfiguration;

public class LoadConfig {
    public static void main(String[] args) {
        Configuration conf = GlobalConfiguration.loadConfiguration(args[0]);
        for (Map.Entry<String, String> e : new TreeMap<>(conf.toMap()).entrySet()) {
            System.out.println(esc(e.getKey()) + "\t" + esc(e.getValue()));
        }
    }

    private static String esc(String s) {
        return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n");
    }
}
