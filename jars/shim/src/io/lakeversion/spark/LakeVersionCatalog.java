package io.lakeversion.spark;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.iceberg.catalog.Catalog;
import org.apache.iceberg.spark.SparkCatalog;
import org.apache.spark.SparkContext;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.analysis.NoSuchProcedureException;
import org.apache.spark.sql.catalyst.analysis.NoSuchTableException;
import org.apache.spark.sql.catalyst.analysis.TableAlreadyExistsException;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.connector.catalog.StagedTable;
import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.expressions.Transform;
import org.apache.spark.sql.connector.iceberg.catalog.Procedure;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * Iceberg's {@link SparkCatalog} pointed at our server's Iceberg REST catalog, on a ref.
 *
 * <p>It extends SparkCatalog (not wraps it) so that CALL procedures and Iceberg's branch DDL
 * keep working. The ref comes from {@code spark.sql.catalog.<name>.ref}, else
 * {@code spark.lakeversion.branch}, else {@code main}; the REST catalog addresses it with
 * {@code warehouse=<ref>}, and {@code db@ref} namespaces reach any other ref. {@code USE
 * BRANCH} rebuilds the REST catalog on the new ref, which also drops cached tables.
 *
 * <p>Options: {@code uri} (server URL; a trailing {@code /iceberg} is accepted), {@code ref},
 * {@code token}, {@code request-timeout-seconds}; other options go to Iceberg unchanged.
 */
public class LakeVersionCatalog extends SparkCatalog {
  public static final String BRANCH_CONF = "spark.lakeversion.branch";
  /** Spark settings under this prefix become commit properties (prefix removed). */
  public static final String PROPERTY_CONF_PREFIX = "spark.lakeversion.property.";
  static final String DEFAULT_REF = "main";

  private CaseInsensitiveStringMap userOptions;
  private String serverUrl;
  private volatile String defaultRef;
  private volatile String currentRef;
  private volatile LakeVersionClient client;
  private boolean userEnabledCache;
  private Map<String, String> commitProperties = new LinkedHashMap<>();
  private String author;
  /** The server's merge strategy names, asked once per catalog (null: not yet). */
  private volatile List<String> strategies;

  @Override
  protected Catalog buildIcebergCatalog(String name, CaseInsensitiveStringMap options) {
    if (client == null) {
      firstInit(options);
    }
    Map<String, String> props = new HashMap<>(userOptions.asCaseSensitiveMap());
    props.remove("catalog-impl");
    props.remove("ref");
    props.put("type", "rest");
    props.put("uri", serverUrl + "/iceberg");
    props.put("warehouse", currentRef);
    // the server accepts and discards scan/commit reports: skip one request per query
    props.putIfAbsent("rest-metrics-reporting-enabled", "false");
    props.put("header.X-Lakeversion-Properties", LakeVersionClient.headerJson(commitProperties));
    if (author != null) {
      props.put("header.X-Lakeversion-Author", author);
    }
    return super.buildIcebergCatalog(name, new CaseInsensitiveStringMap(props));
  }

  private void firstInit(CaseInsensitiveStringMap options) {
    userOptions = options;
    String uri = options.get("uri");
    if (uri == null || uri.isBlank()) {
      throw LakeVersionException.invalid("catalog option 'uri' (the lakeversion server URL) "
          + "is not set: spark.sql.catalog.<name>.uri=http://host:port");
    }
    serverUrl = uri.replaceAll("/+$", "").replaceAll("/iceberg$", "");
    userEnabledCache = options.containsKey("cache-enabled")
        && Boolean.parseBoolean(options.get("cache-enabled"));
    SparkSession spark = SparkSession.active();
    String ref = options.get("ref");
    if (ref == null || ref.isBlank()) {
      ref = spark.conf().get(BRANCH_CONF, DEFAULT_REF);
    }
    defaultRef = ref;
    currentRef = ref;
    SparkContext sc = spark.sparkContext();
    commitProperties.put("spark.app.id", sc.applicationId());
    commitProperties.put("spark.app.name", sc.appName());
    // spark.lakeversion.property.<name>=<value>: stamped on every commit (runs, Airflow)
    for (scala.Tuple2<String, String> kv : sc.getConf().getAllWithPrefix(PROPERTY_CONF_PREFIX)) {
      commitProperties.put(kv._1(), kv._2());
    }
    author = sc.sparkUser();
    Map<String, String> headers = new LinkedHashMap<>();
    headers.put("X-Lakeversion-Properties", LakeVersionClient.headerJson(commitProperties));
    if (author != null) {
      headers.put("X-Lakeversion-Author", author);
    }
    String token = options.get("token");
    if (token != null && !token.isBlank()) {
      headers.put("Authorization", "Bearer " + token);
    }
    long timeout = Long.parseLong(options.getOrDefault("request-timeout-seconds", "120"));
    client = new LakeVersionClient(serverUrl, headers, Duration.ofSeconds(timeout));
  }

  /** The client for {@code /api/v1}; procedures use it, never their own HTTP. */
  public LakeVersionClient client() {
    return client;
  }

  /**
   * {@code name} (any case, {@code _} for {@code -}) as the server spells the strategy, or
   * {@code INVALID_INPUT} listing the server's names as SQL writes them. The names come
   * from the server ({@code GET /api/v1/merge-strategies}, Python's
   * {@code model.merges.STRATEGY_NAMES}), asked once per catalog: the shim spells none.
   */
  public String mergeStrategy(String name) {
    List<String> known = strategies;
    if (known == null) {
      List<String> fetched = new ArrayList<>();
      client.get("/merge-strategies", Map.of()).path("strategies")
          .forEach(s -> fetched.add(s.asText()));
      strategies = known = List.copyOf(fetched);
    }
    String wanted = name.trim().toLowerCase(Locale.ROOT).replace('_', '-');
    if (!known.contains(wanted)) {
      throw LakeVersionException.invalid("unknown merge strategy '" + name + "': use "
          + String.join(", ", known).replace('-', '_'));
    }
    return wanted;
  }

  /** The ref unqualified names read and write right now. */
  public String currentRef() {
    return currentRef;
  }

  /** The ref the session started on (catalog option or {@code spark.lakeversion.branch}). */
  public String defaultRef() {
    return defaultRef;
  }

  /** Point unqualified names at {@code ref} (USE BRANCH); rebuilds the REST catalog. */
  public synchronized void useRef(String ref) {
    currentRef = ref;
    refresh();
  }

  /** Forget everything cached: after a merge, rollback or revert moved a ref. */
  public synchronized void refresh() {
    initialize(name(), userOptions);
  }

  @Override
  public Table loadTable(Identifier ident) throws NoSuchTableException {
    if (RowDiffTable.matches(ident)) { // SHOW DIFF ... ROWS: the server's row diff
      return RowDiffTable.load(this, ident.name());
    }
    return load(ident, () -> super.loadTable(ident));
  }

  @Override
  public Table loadTable(Identifier ident, String version) throws NoSuchTableException {
    return load(ident, () -> super.loadTable(ident, version));
  }

  @Override
  public Table loadTable(Identifier ident, long timestamp) throws NoSuchTableException {
    return load(ident, () -> super.loadTable(ident, timestamp));
  }

  /** The table property that asks the server for a Delta table (CREATE TABLE ... USING delta):
   * Iceberg's catalog drops the provider, so it travels as a property the server reads. */
  static final String TABLE_FORMAT = "lakeversion.table-format";

  static Map<String, String> withFormat(Map<String, String> properties) {
    String provider = properties.get("provider");
    if (provider == null || !provider.equalsIgnoreCase("delta")) {
      return properties;
    }
    Map<String, String> copy = new HashMap<>(properties);
    copy.remove("provider");  // Iceberg's catalog refuses any provider but its own
    copy.put(TABLE_FORMAT, "delta");
    return copy;
  }

  @Override
  public Table createTable(Identifier ident, StructType schema, Transform[] partitions,
      Map<String, String> properties) throws TableAlreadyExistsException {
    Map<String, String> props = withFormat(properties);
    return withRefCheck(ident, () -> super.createTable(ident, schema, partitions, props));
  }

  @Override
  public StagedTable stageCreate(Identifier ident, StructType schema, Transform[] partitions,
      Map<String, String> properties) throws TableAlreadyExistsException {
    Map<String, String> props = withFormat(properties);
    return withRefCheck(ident, () -> super.stageCreate(ident, schema, partitions, props));
  }

  @Override
  public StagedTable stageCreateOrReplace(Identifier ident, StructType schema,
      Transform[] partitions, Map<String, String> properties) {
    Map<String, String> props = withFormat(properties);
    return withRefCheck(ident,
        () -> super.stageCreateOrReplace(ident, schema, partitions, props));
  }

  /**
   * {@code DROP TABLE ... PURGE} drops the table from this branch only. Every branch, tag
   * and retained commit shares the table's files, and Iceberg's purge would delete them
   * from the client side; {@code lakeversion gc} reclaims them once nothing reaches them.
   */
  @Override
  public boolean purgeTable(Identifier ident) {
    return dropTable(ident);
  }

  /** Iceberg procedures that delete files by looking at one ref's metadata only. */
  private static final java.util.Set<String> FILE_DELETING_PROCEDURES =
      java.util.Set.of("remove_orphan_files", "expire_snapshots");

  @Override
  public Procedure loadProcedure(Identifier ident) throws NoSuchProcedureException {
    String[] ns = ident.namespace();
    String procedure = ident.name().toLowerCase(Locale.ROOT);
    if (ns.length == 1 && ns[0].equalsIgnoreCase("system")
        && FILE_DELETING_PROCEDURES.contains(procedure)) {
      throw new LakeVersionException("UNSAFE_OPERATION", "CALL " + name() + ".system."
          + procedure + " is refused: it sees only this ref's metadata, but every branch, "
          + "tag and retained commit shares the table's files, so it would delete files "
          + "other refs still read. Use `lakeversion gc` (or POST /api/v1/gc), which "
          + "deletes only what no ref and no retained commit reaches.");
    }
    if (ns.length == 1 && ns[0].equalsIgnoreCase(BranchSql.NAMESPACE)) {
      Procedure p = LakeVersionProcedures.load(ident.name().toLowerCase(Locale.ROOT), this);
      if (p == null) {
        throw new NoSuchProcedureException(ident);
      }
      return p;
    }
    return super.loadProcedure(ident);
  }

  /**
   * Without an explicit {@code cache-enabled=true}, never answer from Iceberg's table cache:
   * another process may have merged into or rolled back the ref since.
   */
  private void forgetUnlessCaching(Identifier ident) {
    if (!userEnabledCache) {
      super.invalidateTable(ident);
    }
  }

  /** A missing table under {@code db@nope}: say the ref is unknown, not the table. */
  private void checkRef(Identifier ident) {
    String[] ns = ident.namespace();
    if (ns.length == 0) {
      return;
    }
    int at = ns[0].indexOf('@');
    if (at < 0 || at == ns[0].length() - 1) {
      return;
    }
    String ref = ns[0].substring(at + 1);
    try {
      client.get("/resolve", Map.of("ref", ref));
    } catch (LakeVersionException e) {
      String code = e.code();
      if (code.endsWith("NOT_FOUND") && !code.equals("KEY_NOT_FOUND")
          || code.startsWith("INVALID")) {
        throw new LakeVersionException(code, e.getMessage().substring(
            e.getMessage().indexOf("] ") + 2) + " (in " + Arrays.toString(ns) + ")",
            e.payload(), null);
      }
    }
  }

  /** One of Iceberg's {@code loadTable} overloads. */
  @FunctionalInterface
  private interface TableLoader {
    Table load() throws NoSuchTableException;
  }

  /**
   * Every {@code loadTable}: bypass the table cache unless asked for, and report a missing
   * table under an unknown ref as the ref.
   */
  private Table load(Identifier ident, TableLoader loader) throws NoSuchTableException {
    forgetUnlessCaching(ident);
    try {
      return loader.load();
    } catch (NoSuchTableException e) {
      checkRef(ident);
      throw e;
    }
  }

  private <T> T withRefCheck(Identifier ident, Callable<T> body) {
    try {
      return body.call();
    } catch (Exception e) {
      if (isNotFound(e)) {
        checkRef(ident);
      }
      sneakyThrow(e);
      return null;
    }
  }

  private static boolean isNotFound(Throwable e) {
    String n = e.getClass().getSimpleName();
    return n.startsWith("NoSuch");
  }

  @SuppressWarnings("unchecked")
  private static <E extends Throwable> void sneakyThrow(Throwable e) throws E {
    throw (E) e;
  }
}
