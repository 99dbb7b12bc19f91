package io.lakeversion.spark;

import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.FunctionIdentifier;
import org.apache.spark.sql.catalyst.TableIdentifier;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.parser.ParseException;
import org.apache.spark.sql.catalyst.parser.ParserInterface;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.connector.catalog.CatalogPlugin;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;
import scala.collection.Seq;

/**
 * Wraps the session's parser (Iceberg's, when listed after it): branch SQL becomes a CALL,
 * unquoted {@code db@ref.table} becomes {@code `db@ref`.table}; the rest is untouched.
 */
public final class LakeVersionParser implements ParserInterface {
  /** Session conf naming the catalog that branch SQL and bare {@code db@ref.t} use. */
  public static final String CATALOG_CONF = "spark.lakeversion.catalog";
  public static final String DEFAULT_CATALOG = "lv";

  private final SparkSession session;
  private final ParserInterface delegate;

  public LakeVersionParser(SparkSession session, ParserInterface delegate) {
    this.session = session;
    this.delegate = delegate;
  }

  private String defaultCatalog() {
    return session.conf().get(CATALOG_CONF, DEFAULT_CATALOG);
  }

  /** {@code db@ref.t} belongs to the current catalog if it is ours, else to ours by name. */
  private String prefixForTwoPartName() {
    try {
      CatalogPlugin current = session.sessionState().catalogManager().currentCatalog();
      if (current instanceof LakeVersionCatalog) {
        return null;
      }
    } catch (RuntimeException e) {
      // no usable current catalog: fall back to ours
    }
    return defaultCatalog();
  }

  private String rewrite(String sql) {
    return RefSyntax.rewrite(sql, this::prefixForTwoPartName);
  }

  @Override
  public LogicalPlan parsePlan(String sqlText) throws ParseException {
    BranchSql.Parsed branchSql = BranchSql.parse(sqlText, defaultCatalog());
    if (branchSql != null) {
      if (branchSql.procedure.equals("diff_rows") && RowEngine.inSession(session)) {
        // past the server's memory budget, and always by default: the rows are read and
        // diffed here, by the same SQL the server would run (RowEngine)
        return delegate.parsePlan(RowEngine.prepareDiff(session, branchSql.catalog,
            branchSql.args));
      }
      return branchSql.toPlan();
    }
    return delegate.parsePlan(rewrite(sqlText));
  }

  @Override
  public LogicalPlan parseQuery(String sqlText) throws ParseException {
    return delegate.parseQuery(rewrite(sqlText));
  }

  @Override
  public Expression parseExpression(String sqlText) throws ParseException {
    return delegate.parseExpression(RefSyntax.rewrite(sqlText, null));
  }

  @Override
  public TableIdentifier parseTableIdentifier(String sqlText) throws ParseException {
    return delegate.parseTableIdentifier(RefSyntax.rewrite(sqlText, null));
  }

  @Override
  public FunctionIdentifier parseFunctionIdentifier(String sqlText) throws ParseException {
    return delegate.parseFunctionIdentifier(sqlText);
  }

  @Override
  public Seq<String> parseMultipartIdentifier(String sqlText) throws ParseException {
    return delegate.parseMultipartIdentifier(rewrite(sqlText));
  }

  @Override
  public StructType parseTableSchema(String sqlText) throws ParseException {
    return delegate.parseTableSchema(sqlText);
  }

  @Override
  public DataType parseDataType(String sqlText) throws ParseException {
    return delegate.parseDataType(sqlText);
  }
}
