package io.lakeversion.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.iceberg.BaseTable;
import org.apache.iceberg.DataFile;
import org.apache.iceberg.FileScanTask;
import org.apache.iceberg.HasTableOperations;
import org.apache.iceberg.LocationProviders;
import org.apache.iceberg.ScanTask;
import org.apache.iceberg.Table;
import org.apache.iceberg.io.CloseableIterable;
import org.apache.iceberg.io.LocationProvider;
import org.apache.iceberg.spark.FileRewriteCoordinator;
import org.apache.iceberg.spark.ScanTaskSetManager;
import org.apache.iceberg.spark.SparkReadOptions;
import org.apache.iceberg.spark.SparkTableCache;
import org.apache.iceberg.spark.SparkWriteOptions;
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
    release(spark, parse(planJson));
  }

  /** Forget a plan's staged scans, cached relations (a merge plan's) and views. */
  private static void release(SparkSession spark, JsonNode plan) {
    for (JsonNode name : plan.path("cached")) { // all uncached before any is dropped: a
      // cached relation's plan names the ones before it
      spark.sql("UNCACHE TABLE IF EXISTS `" + name.asText().replace("`", "``") + "`");
    }
    for (JsonNode name : plan.path("cached")) {
      spark.catalog().dropTempView(name.asText());
    }
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

  // ---- the row merge ----------------------------------------------------------------------

  /** Merge attempts when the target moves between the plan and the merge. */
  private static final int MERGE_ATTEMPTS = 3;

  /**
   * A merge whose row-level merges run in this session: the server plans them ({@code POST
   * /merge} with {@code plan_rows}: per table the scans, the rule's SQL and a staging
   * directory), this session runs each plan and writes the merged rows with Iceberg's own
   * writer under that directory, and the merge is asked again with what was computed
   * ({@code row_results}, pinned to the planned target head), where the server checks the
   * files and commits one merge snapshot through the usual gates. {@code argsJson} is an
   * {@code /api/v1/merge} body; the answer is the merge result's JSON. The files written
   * here are deleted again when the server refuses them before any state names them; a
   * gate's refusal keeps them, since the preview it checked and recorded names them (gc
   * collects them with it).
   */
  public static String merge(SparkSession spark, String catalogName, String argsJson) {
    LakeVersionCatalog catalog = lakeVersionCatalog(spark, catalogName);
    JsonNode args = parse(argsJson);
    if (!args.isObject()) {
      throw LakeVersionException.invalid("a merge's arguments must be a JSON object");
    }
    for (int attempt = 1; ; attempt++) {
      ObjectNode planBody = ((ObjectNode) args).deepCopy();
      planBody.remove("row_results");
      planBody.put("dry_run", true).put("plan_only", true).put("plan_rows", true);
      JsonNode planned = catalog.client().post("/merge", planBody);
      ObjectNode results = LakeVersionClient.object();
      List<Written> written = new ArrayList<>();
      boolean clean = true;
      try {
        for (JsonNode detail : planned.path("details")) {
          JsonNode plan = detail.path("statistics").path("row_merge").path("plan");
          if (plan.isObject()) {
            results.set(plan.path("table").asText(), runMerge(spark, catalog, plan, written));
          } else if (detail.path("conflict").isObject()) {
            clean = false; // a conflict no row merge settles: the merge below reports it
          }
        }
      } catch (RuntimeException e) {
        discard(written);
        throw e;
      }
      ObjectNode body = ((ObjectNode) args).deepCopy();
      if (results.size() > 0 && clean) {
        body.set("row_results", results);
        body.put("expected_target_head", planned.path("target_head_before").asText());
      } else {
        discard(written);
        written.clear();
      }
      try {
        return LakeVersionClient.JSON.writeValueAsString(catalog.client().post("/merge", body));
      } catch (LakeVersionException e) {
        if (!"CHECKS_FAILED".equals(e.code())) {
          discard(written); // refused before any state named them
        } // a gate's refusal: its recorded preview names them, gc collects them with it
        if (!"REFERENCE_CONFLICT".equals(e.code()) || attempt >= MERGE_ATTEMPTS
            || written.isEmpty()) {
          throw e;
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      } finally {
        catalog.refresh();
      }
    }
  }

  /** Whether a refused merge's only obstacle is row merges past the server's row limit
   * (each table's conflict carries {@code row_merge.over_limit}). */
  static boolean overLimit(LakeVersionException e) {
    JsonNode payload;
    try {
      payload = e.payload() == null ? null : LakeVersionClient.JSON.readTree(e.payload());
    } catch (IOException bad) {
      return false;
    }
    if (payload == null || !payload.path("result").isObject()) {
      return false;
    }
    boolean any = false;
    for (JsonNode detail : payload.path("result").path("details")) {
      if (detail.path("conflict").isObject()) {
        if (!detail.path("statistics").path("row_merge").path("over_limit").asBoolean(false)) {
          return false;
        }
        any = true;
      }
    }
    return any;
  }

  /** The files one table's row merge wrote, with the FileIO that wrote them. */
  private static final class Written {
    final Table table;
    final List<String> paths;

    Written(Table table, List<String> paths) {
      this.table = table;
      this.paths = paths;
    }
  }

  private static void discard(List<Written> written) {
    for (Written w : written) {
      for (String path : w.paths) {
        try {
          w.table.io().deleteFile(path);
        } catch (RuntimeException ignored) {
          // best effort: an unreferenced file is gc's to collect
        }
      }
    }
  }

  private static long count(SparkSession spark, String sql) {
    Row row = spark.sql(sql).first();
    return row.isNullAt(0) ? 0L : ((Number) row.get(0)).longValue();
  }

  /** One table's row merge plan run here: what goes back to the server for it. */
  static ObjectNode runMerge(SparkSession spark, TableCatalog catalog, JsonNode plan,
      List<Written> written) {
    ObjectNode out = LakeVersionClient.object();
    out.set("commits", plan.path("commits"));
    try {
      for (JsonNode scan : plan.path("scans")) {
        stage(spark, catalog, scan, true);
      }
      for (JsonNode statement : plan.path("statements")) {
        spark.sql(statement.asText());
      }
      ObjectNode duplicates = out.putObject("duplicate_keys");
      boolean duplicated = false;
      java.util.Iterator<Map.Entry<String, JsonNode>> dups = plan.path("duplicate_keys").fields();
      while (dups.hasNext()) {
        Map.Entry<String, JsonNode> e = dups.next();
        long n = count(spark, e.getValue().asText());
        duplicates.put(e.getKey(), n);
        duplicated |= n > 0;
      }
      if (duplicated) {
        return out; // the server refuses the row merge: the file-level conflict stands
      }
      long conflicts = count(spark, plan.path("conflict_count").asText());
      out.put("conflict_count", conflicts);
      if (conflicts > 0 && plan.path("resolution").isNull()) {
        ArrayNode listed = out.putArray("conflicts");
        for (String row : spark.sql(plan.path("conflicts").asText()).toJSON().collectAsList()) {
          listed.add(parse(row));
        }
        return out;
      }
      JsonNode inserted = plan.path("inserted");
      if (inserted.isObject()) {
        long n = count(spark, inserted.path("count").asText());
        out.put("inserted", n);
        if (n > 0) {
          ArrayNode parts = out.putArray("inserted_partitions");
          for (Row r : spark.sql(inserted.path("partitions").asText()).collectAsList()) {
            parts.add(r.isNullAt(0) ? "" : r.getString(0));
          }
          return out;
        }
      }
      ArrayNode removed = out.putArray("removed");
      for (Row r : spark.sql(plan.path("files").asText()).collectAsList()) {
        removed.add(r.getString(0));
      }
      JsonNode write = plan.path("write");
      out.put("staging", write.path("staging").asText());
      ArrayNode paths = out.putArray("written");
      if (removed.size() > 0) {
        Dataset<Row> rows = spark.sql(plan.path("rows").asText());
        for (String path : writeRows(spark, catalog, write, rows, written)) {
          paths.add(path);
        }
      }
      return out;
    } finally {
      release(spark, plan);
    }
  }

  /**
   * Write {@code rows} as new data files of the table the plan names, with Iceberg's own
   * writer (field ids, metrics, the table's spec), under the plan's staging directory and
   * committed nowhere: Iceberg's rewrite coordinator holds them, as {@code
   * rewrite_data_files} does, and the server commits them. Returns their locations.
   */
  private static List<String> writeRows(SparkSession spark, TableCatalog catalog,
      JsonNode write, Dataset<Row> rows, List<Written> written) {
    Table table = load(catalog, write);
    if (!(table instanceof HasTableOperations)) {
      throw LakeVersionException.invalid(table.name() + " is not a table Iceberg writes");
    }
    Map<String, String> props = new HashMap<>(table.properties());
    props.remove("write.object-storage.enabled");
    props.remove("write.object-storage.path");
    props.remove("write.folder-storage.path");
    props.put("write.data.path", write.path("staging").asText());
    LocationProvider staging = LocationProviders.locationsFor(table.location(), props);
    Table staged = new BaseTable(((HasTableOperations) table).operations(), table.name()) {
      @Override
      public LocationProvider locationProvider() {
        return staging;
      }
    };
    String setId = "lv-rowmerge-" + java.util.UUID.randomUUID();
    Written mine = new Written(staged, new ArrayList<>());
    written.add(mine);
    SparkTableCache.get().add(setId, staged);
    try {
      rows.write().format("iceberg")
          .option(SparkWriteOptions.REWRITTEN_FILE_SCAN_TASK_SET_ID, setId)
          .option(SparkWriteOptions.OUTPUT_SPEC_ID, write.path("spec_id").asText())
          .option(SparkWriteOptions.CHECK_NULLABILITY, "false")
          .option(SparkWriteOptions.FANOUT_ENABLED, "true")
          .mode("append").save(setId);
      for (Object f : FileRewriteCoordinator.get().fetchNewFiles(staged, setId)) {
        mine.paths.add(((DataFile) f).location());
      }
    } finally {
      FileRewriteCoordinator.get().clearRewrite(staged, setId);
      SparkTableCache.get().remove(setId);
    }
    return mine.paths;
  }

  private static Table load(TableCatalog catalog, JsonNode scan) {
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
    return ((SparkTable) loaded).table();
  }

  private static void stage(SparkSession spark, TableCatalog catalog, JsonNode scan) {
    stage(spark, catalog, scan, false);
  }

  /** Stage a scan; {@code withFile}: its view also has {@code __lv_file}, each row's data
   * file as the plan spells it. */
  private static void stage(SparkSession spark, TableCatalog catalog, JsonNode scan,
      boolean withFile) {
    Table table = load(catalog, scan);
    String ident = table.name();
    Map<String, String> spelled = new LinkedHashMap<>();
    Map<String, String> wanted = new HashMap<>();
    scan.path("files").forEach(f -> wanted.put(normalize(f.asText()), f.asText()));
    List<ScanTask> tasks = new ArrayList<>();
    if (!wanted.isEmpty() && table.currentSnapshot() != null) {
      try (CloseableIterable<FileScanTask> planned = table.newScan().planFiles()) {
        for (FileScanTask task : planned) {
          String plan = wanted.remove(normalize(task.file().location()));
          if (plan != null) {
            tasks.add(task);
            if (!plan.equals(task.file().location())) {
              spelled.put(task.file().location(), plan);
            }
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
    Dataset<Row> read = spark.read().format("iceberg")
        .option(SparkReadOptions.SCAN_TASK_SET_ID, view).load(view);
    if (withFile) {
      StringBuilder file = new StringBuilder("_file");
      if (!spelled.isEmpty()) {
        file = new StringBuilder("CASE _file");
        for (Map.Entry<String, String> e : spelled.entrySet()) {
          file.append(" WHEN ").append(literal(e.getKey())).append(" THEN ")
              .append(literal(e.getValue()));
        }
        file.append(" ELSE _file END");
      }
      read = read.selectExpr("*", file + " AS __lv_file");
    }
    read.createOrReplaceTempView(view);
  }

  private static String literal(String text) {
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'";
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
