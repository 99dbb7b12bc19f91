package io.lakeversion.spark;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.iceberg.FileScanTask;
import org.apache.iceberg.ScanTask;
import org.apache.iceberg.Table;
import org.apache.iceberg.io.CloseableIterable;
import org.apache.iceberg.spark.ScanTaskSetManager;
import org.apache.iceberg.spark.SparkReadOptions;
import org.apache.iceberg.spark.SparkTableCache;
import org.apache.iceberg.spark.source.SparkTable;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.analysis.NoSuchTableException;
import org.apache.spark.sql.connector.catalog.CatalogPlugin;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.connector.catalog.TableCatalog;

/**
 * Row work in the caller's session, as the server planned it ({@code GET
 * /api/v1/diff/rows/plan}): the server decides which files each side reads and writes the
 * SQL; this class only stages the scans and runs the statements.
 *
 * <p>A plan's {@code scans} each name a table at one commit ({@code db@<commit>} through this
 * catalog, so Iceberg and Delta tables alike) and the data files to read there; each becomes a
 * temporary view over exactly those files, read by Iceberg with that commit's deletes applied
 * (Iceberg's staged scan task sets, as its own {@code rewrite_data_files} reads a file group),
 * so files both sides share are never opened. Then the plan's {@code statements} run in order
 * and its {@code query} is the answer. {@link #release} forgets the staged scans and views.
 */
public final class RowEngine {
  /** Session conf: {@code spark} (default) runs SHOW DIFF ... ROWS here, {@code server} asks
   * the server for its rows ({@link RowDiffTable}). */
  public static final String ENGINE_CONF = "spark.lakeversion.rows.engine";

  private RowEngine() {}

  /** Whether SHOW DIFF ... ROWS runs in this session (the default) or in the server. */
  static boolean inSession(SparkSession spark) {
    String engine = spark.conf().get(ENGINE_CONF, "spark").trim().toLowerCase();
    if (!engine.equals("spark") && !engine.equals("server")) {
      throw LakeVersionException.invalid(ENGINE_CONF + " must be spark or server, not '"
          + engine + "'");
    }
    return engine.equals("spark");
  }

  /** The row diff of a parsed SHOW DIFF ... ROWS: planned by the server, its scans staged and
   * statements run here; returns the query text whose rows are the diff. */
  static String prepareDiff(SparkSession spark, String catalogName, Map<String, Object> args) {
    LakeVersionCatalog catalog = lakeVersionCatalog(spark, catalogName);
    Map<String, Object> q = new LinkedHashMap<>();
    q.put("from", args.get("from_ref"));
    q.put("to", args.get("to_ref"));
    q.put("table", args.get("table"));
    q.put("limit", args.get("limit"));
    q.put("dialect", "spark");
    JsonNode plan = catalog.client().get("/diff/rows/plan", q);
    return prepare(spark, catalogName, plan);
  }

  /** Stage a plan's scans and run its statements; the query to read the answer with. */
  public static String prepare(SparkSession spark, String catalogName, String planJson) {
    return prepare(spark, catalogName, parse(planJson));
  }

  /** {@link #prepare}, then the answer as a Dataset (for Python: one py4j call). */
  public static Dataset<Row> run(SparkSession spark, String catalogName, String planJson) {
    return spark.sql(prepare(spark, catalogName, planJson));
  }

  static String prepare(SparkSession spark, String catalogName, JsonNode plan) {
    TableCatalog catalog = lakeVersionCatalog(spark, catalogName);
    for (JsonNode scan : plan.path("scans")) {
      stage(spark, catalog, scan);
    }
    for (JsonNode statement : plan.path("statements")) {
      spark.sql(statement.asText());
    }
    return plan.path("query").asText();
  }

  /** Forget a plan's staged scans and drop its views (after its answer was read). */
  public static void release(SparkSession spark, String planJson) {
    JsonNode plan = parse(planJson);
    for (JsonNode name : plan.path("views")) {
      spark.catalog().dropTempView(name.asText());
    }
    for (JsonNode scan : plan.path("scans")) {
      String view = scan.path("view").asText();
      Table table = SparkTableCache.get().remove(view);
      if (table != null) {
        ScanTaskSetManager.get().removeTasks(table, view);
      }
      spark.catalog().dropTempView(view);
    }
  }

  private static void stage(SparkSession spark, TableCatalog catalog, JsonNode scan) {
    List<String> namespace = new ArrayList<>();
    scan.path("namespace").forEach(n -> namespace.add(n.asText()));
    Identifier ident = Identifier.of(namespace.toArray(new String[0]), scan.path("name").asText());
    org.apache.spark.sql.connector.catalog.Table loaded;
    try {
      loaded = catalog.loadTable(ident);
    } catch (NoSuchTableException e) {
      throw new LakeVersionException("KEY_NOT_FOUND", "table " + ident + " does not exist");
    }
    if (!(loaded instanceof SparkTable)) {
      throw LakeVersionException.invalid(ident + " is not a table Iceberg reads");
    }
    Table table = ((SparkTable) loaded).table();
    Map<String, String> wanted = new HashMap<>();
    scan.path("files").forEach(f -> wanted.put(normalize(f.asText()), f.asText()));
    List<ScanTask> tasks = new ArrayList<>();
    if (!wanted.isEmpty() && table.currentSnapshot() != null) {
      try (CloseableIterable<FileScanTask> planned = table.newScan().planFiles()) {
        for (FileScanTask task : planned) {
          if (wanted.remove(normalize(task.file().location())) != null) {
            tasks.add(task);
          }
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    if (!wanted.isEmpty()) {
      throw LakeVersionException.invalid("the row plan names data files that " + ident
          + " does not have: " + String.join(", ", wanted.values()));
    }
    String view = scan.path("view").asText();
    ScanTaskSetManager.get().stageTasks(table, view, tasks);
    SparkTableCache.get().add(view, table);
    spark.read().format("iceberg").option(SparkReadOptions.SCAN_TASK_SET_ID, view).load(view)
        .createOrReplaceTempView(view);
  }

  /**
   * One spelling per file location: {@code file:/x}, {@code file:///x} and {@code /x} alike,
   * percent-escapes decoded (a Delta log's add path is a URI: {@code p%3Da} is {@code p=a}).
   */
  static String normalize(String location) {
    String s = location;
    if (s.startsWith("file:")) {
      s = s.substring("file:".length()).replaceFirst("^/+", "/");
    }
    if (s.indexOf('%') < 0) {
      return s;
    }
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    byte[] raw = s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    for (int i = 0; i < raw.length; i++) {
      int hi = i + 2 < raw.length ? Character.digit(raw[i + 1], 16) : -1;
      int lo = i + 2 < raw.length ? Character.digit(raw[i + 2], 16) : -1;
      if (raw[i] == '%' && hi >= 0 && lo >= 0) {
        out.write(hi * 16 + lo);
        i += 2;
      } else {
        out.write(raw[i]);
      }
    }
    return new String(out.toByteArray(), java.nio.charset.StandardCharsets.UTF_8);
  }

  private static LakeVersionCatalog lakeVersionCatalog(SparkSession spark, String name) {
    CatalogPlugin plugin = spark.sessionState().catalogManager().catalog(name);
    if (!(plugin instanceof LakeVersionCatalog)) {
      throw LakeVersionException.invalid("catalog '" + name + "' is not a lakeversion catalog");
    }
    return (LakeVersionCatalog) plugin;
  }

  private static JsonNode parse(String planJson) {
    try {
      return LakeVersionClient.JSON.readTree(planJson);
    } catch (IOException e) {
      throw LakeVersionException.invalid("not a row plan: " + e.getMessage());
    }
  }
}
