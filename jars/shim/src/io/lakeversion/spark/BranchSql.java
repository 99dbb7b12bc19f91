package io.lakeversion.spark;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.sql.catalyst.analysis.UnresolvedRelation;
import org.apache.spark.sql.catalyst.expressions.Literal$;
import org.apache.spark.sql.catalyst.plans.logical.CallArgument;
import org.apache.spark.sql.catalyst.plans.logical.CallStatement;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.plans.logical.NamedArgument;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;
import scala.collection.JavaConverters;

/**
 * The branch SQL statements, translated into {@code CALL <catalog>.lakeversion.<proc>(...)}.
 *
 * <p>The parser builds Iceberg's CALL plan directly (Iceberg's own parser only accepts CALL
 * text naming its built-in procedures). Going through Iceberg's CALL keeps execution where Spark expects it (analysis, then an
 * eager command that returns rows) instead of doing work while parsing; the procedures
 * themselves live in {@link LakeVersionProcedures} and only talk to the server.
 */
public final class BranchSql {
  private BranchSql() {}

  /** Procedure namespace inside a LakeVersion catalog. */
  public static final String NAMESPACE = "lakeversion";

  private static final String[][] STARTS = {
    {"CREATE", "BRANCH"}, {"CREATE", "TAG"}, {"DROP", "BRANCH"}, {"DROP", "TAG"},
    {"SHOW", "BRANCHES"}, {"SHOW", "TAGS"}, {"USE", "BRANCH"}, {"SHOW", "LOG"},
    {"SHOW", "DIFF"}, {"MERGE", "BRANCH"}, {"ROLLBACK", "TABLE"}, {"REVERT", "COMMIT"},
    {"ALTER", "BRANCH"}, {"SHOW", "CHECK"}, {"SHOW", "CHECKS"}, {"ADD", "CHECK"},
    {"DROP", "CHECK"},
  };

  /**
   * Seconds per unit of a check's TIMEOUT, as the CLI's durations spell them (Python's
   * spark_lakeversion.gc.durations._UNITS, the one list; a test holds this copy to it).
   */
  public static final Map<String, Double> DURATION_UNITS = Map.ofEntries(
      Map.entry("ms", 0.001), Map.entry("s", 1.0), Map.entry("sec", 1.0),
      Map.entry("m", 60.0), Map.entry("min", 60.0), Map.entry("h", 3600.0),
      Map.entry("hr", 3600.0), Map.entry("d", 86400.0), Map.entry("day", 86400.0),
      Map.entry("days", 86400.0), Map.entry("w", 604800.0), Map.entry("wk", 604800.0));
  private static final Pattern DURATION = Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*("
      + String.join("|", DURATION_UNITS.keySet()) + ")?", Pattern.CASE_INSENSITIVE);

  /** One parsed branch statement: which procedure of which catalog, with which arguments. */
  public static final class Parsed {
    public final String catalog;
    public final String procedure;
    public final Map<String, Object> args;

    Parsed(String catalog, String procedure, Map<String, Object> args) {
      this.catalog = catalog;
      this.procedure = procedure;
      this.args = args;
    }

    /**
     * Iceberg's unresolved CALL plan; Iceberg's analyzer rules resolve and run it. A row
     * diff is a relation instead ({@link RowDiffTable}): its columns are the table's.
     */
    public LogicalPlan toPlan() {
      if (procedure.equals("diff_rows")) {
        List<String> name = List.of(catalog, RowDiffTable.NAMESPACE[0],
            RowDiffTable.NAMESPACE[1], RowDiffTable.encode(args));
        return new UnresolvedRelation(JavaConverters.asScalaBuffer(name).toSeq(),
            new CaseInsensitiveStringMap(Map.of()), false);
      }
      List<CallArgument> callArgs = new ArrayList<>();
      for (Map.Entry<String, Object> arg : args.entrySet()) {
        Object v = arg.getValue();
        DataType type = v instanceof Boolean ? DataTypes.BooleanType
            : v instanceof Integer ? DataTypes.IntegerType
            : v instanceof Double ? DataTypes.DoubleType : DataTypes.StringType;
        callArgs.add(new NamedArgument(arg.getKey(), Literal$.MODULE$.create(v, type)));
      }
      List<String> name = List.of(catalog, NAMESPACE, procedure);
      return new CallStatement(JavaConverters.asScalaBuffer(name).toSeq(),
          JavaConverters.asScalaBuffer(callArgs).toSeq());
    }

    /** The same statement as CALL text, for humans (EXPLAIN-like debugging, tests). */
    public String toCallText() {
      if (procedure.equals("diff_rows")) {
        return "SELECT * FROM " + RefSyntax.quote(catalog) + "." + String.join(".",
            RowDiffTable.NAMESPACE) + "." + RefSyntax.quote(RowDiffTable.encode(args));
      }
      StringBuilder call = new StringBuilder("CALL ")
          .append(RefSyntax.quote(catalog)).append('.').append(NAMESPACE).append('.')
          .append(procedure).append('(');
      boolean first = true;
      for (Map.Entry<String, Object> arg : args.entrySet()) {
        if (!first) {
          call.append(", ");
        }
        first = false;
        call.append(arg.getKey()).append(" => ").append(literal(arg.getValue()));
      }
      return call.append(')').toString();
    }
  }

  /**
   * The branch statement in {@code sql}, or null when it is not one of ours.
   *
   * @param defaultCatalog catalog used when the statement has no {@code IN catalog}
   */
  public static Parsed parse(String sql, String defaultCatalog) {
    List<String> words = words(sql);
    if (words == null || words.size() < 2 || !isOurs(words)) {
      return null;
    }
    if (words.get(0).equalsIgnoreCase("USE") && words.size() < 3) {
      return null; // `USE branch` selects a database named branch
    }
    Statement st = new Statement(words);
    String proc = st.parse();
    return new Parsed(st.catalog != null ? st.catalog : defaultCatalog, proc, st.args);
  }

  /** {@link #parse} as CALL text, or null. */
  public static String toCall(String sql, String defaultCatalog) {
    Parsed parsed = parse(sql, defaultCatalog);
    return parsed == null ? null : parsed.toCallText();
  }

  static boolean isOurs(List<String> words) {
    for (String[] start : STARTS) {
      if (words.get(0).equalsIgnoreCase(start[0]) && words.get(1).equalsIgnoreCase(start[1])) {
        return true;
      }
    }
    return false;
  }

  private static String literal(Object value) {
    if (value instanceof Boolean || value instanceof Integer || value instanceof Double) {
      return value.toString();
    }
    String s = value.toString().replace("\\", "\\\\").replace("'", "\\'");
    return "'" + s + "'";
  }

  /**
   * Whitespace-separated words; comments dropped, {@code 'x'} and {@code `x`} unquoted.
   * Returns null for text that cannot be one of our statements (e.g. an open quote).
   */
  static List<String> words(String sql) {
    List<String> out = new ArrayList<>();
    StringBuilder cur = null;
    int n = sql.length();
    int i = 0;
    while (i < n) {
      char c = sql.charAt(i);
      if (c == '-' && i + 1 < n && sql.charAt(i + 1) == '-') {
        int end = sql.indexOf('\n', i);
        i = end < 0 ? n : end;
        continue;
      }
      if (c == '/' && i + 1 < n && sql.charAt(i + 1) == '*') {
        i = RefSyntax.skipBlockComment(sql, i);
        continue;
      }
      if (Character.isWhitespace(c) || c == ';') {
        if (cur != null) {
          out.add(cur.toString());
          cur = null;
        }
        if (c == ';') {
          List<String> after = words(sql.substring(i + 1));
          if (after == null || !after.isEmpty()) {
            return null; // more than one statement: not ours to split
          }
          return out;
        }
        i++;
        continue;
      }
      if (cur == null) {
        cur = new StringBuilder();
      }
      if (c == '\'' || c == '"' || c == '`') {
        int end = c == '`' ? RefSyntax.skipQuotedIdent(sql, i) : RefSyntax.skipString(sql, i);
        if (end >= n && sql.charAt(n - 1) != c) {
          return null;
        }
        String body = sql.substring(i + 1, Math.max(i + 1, end - 1));
        cur.append(c == '`' ? body.replace("``", "`") : unescape(body));
        i = end;
        continue;
      }
      cur.append(c);
      i++;
    }
    if (cur != null) {
      out.add(cur.toString());
    }
    return out;
  }

  private static String unescape(String s) {
    StringBuilder b = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '\\' && i + 1 < s.length()) {
        b.append(s.charAt(++i));
      } else {
        b.append(c);
      }
    }
    return b.toString();
  }

  /** A tiny recursive-descent reader over the words of one statement. */
  private static final class Statement {
    final List<String> w;
    int pos;
    String catalog;
    final Map<String, Object> args = new LinkedHashMap<>();

    Statement(List<String> words) {
      this.w = words;
    }

    String parse() {
      String a = next("a statement").toUpperCase(Locale.ROOT);
      String b = next("a statement").toUpperCase(Locale.ROOT);
      switch (a + " " + b) {
        case "CREATE BRANCH":
        case "CREATE TAG":
          args.put("type", b);
          if (accept("IF")) {
            expect("NOT");
            expect("EXISTS");
            args.put("if_not_exists", true);
          }
          args.put("name", next("a " + b.toLowerCase(Locale.ROOT) + " name"));
          while (more()) {
            if (accept("FROM")) {
              args.put("from_ref", next("a ref after FROM"));
            } else {
              clause();
            }
          }
          return "create_ref";
        case "DROP BRANCH":
        case "DROP TAG":
          args.put("type", b);
          if (accept("IF")) {
            expect("EXISTS");
            args.put("if_exists", true);
          }
          args.put("name", next("a " + b.toLowerCase(Locale.ROOT) + " name"));
          if (b.equals("BRANCH") && accept("FORCE")) {
            args.put("force", true);
          }
          rest();
          return "drop_ref";
        case "SHOW BRANCHES":
          args.put("type", "BRANCH");
          rest();
          return "list_refs";
        case "SHOW TAGS":
          args.put("type", "TAG");
          rest();
          return "list_refs";
        case "USE BRANCH":
          args.put("name", next("a branch name"));
          rest();
          return "use_ref";
        case "SHOW LOG":
          while (more()) {
            if (accept("ON")) {
              args.put("ref", next("a ref after ON"));
            } else if (accept("LIMIT")) {
              String limit = next("a number after LIMIT");
              try {
                args.put("max_commits", Integer.parseInt(limit));
              } catch (NumberFormatException e) {
                throw LakeVersionException.invalid("LIMIT needs a number, not '" + limit + "'");
              }
            } else {
              clause();
            }
          }
          return "log";
        case "SHOW DIFF":
          expect("FROM");
          args.put("from_ref", next("a ref after FROM"));
          expect("TO");
          args.put("to_ref", next("a ref after TO"));
          boolean rows = false;
          while (more()) {
            if (accept("FOR")) {
              expect("TABLE");
              args.put("table", next("a table name after FOR TABLE"));
            } else if (accept("ROWS")) {
              rows = true;
            } else if (accept("LIMIT")) {
              String limit = next("a number after LIMIT");
              if (!limit.matches("\\d{1,9}")) {
                throw LakeVersionException.invalid("LIMIT needs a number, not '" + limit + "'");
              }
              args.put("limit", Integer.parseInt(limit));
            } else {
              clause();
            }
          }
          if (rows != args.containsKey("table") || (args.containsKey("limit") && !rows)) {
            throw LakeVersionException.invalid("the rows of one table: SHOW DIFF FROM a TO b "
                + "FOR TABLE db.t ROWS [LIMIT n], in: " + String.join(" ", w));
          }
          return rows ? "diff_rows" : "diff";
        case "MERGE BRANCH":
          args.put("source", next("the source ref"));
          expect("INTO");
          args.put("target", next("the target branch"));
          while (more()) {
            if (accept("DRY")) {
              expect("RUN");
              args.put("dry_run", true);
            } else if (accept("NO")) {
              expect("FF");
              args.put("fast_forward", false);
            } else if (accept("USING")) {
              // the names are the server's (GET /api/v1/merge-strategies): the merge
              // procedure checks this one against them; SQL writes '_' for '-'
              expect("STRATEGY");
              args.put("strategy", next("a merge strategy after USING STRATEGY")
                  .toLowerCase(Locale.ROOT).replace('_', '-'));
            } else if (accept("ON")) {
              // MERGE BRANCH dev INTO main ON ROW CONFLICT source_wins: the server checks the
              // name (its list is in its error); SQL writes '_' for '-'
              expect("ROW");
              expect("CONFLICT");
              args.put("row_conflicts", next("source_wins or target_wins after ON ROW CONFLICT")
                  .toLowerCase(Locale.ROOT).replace('_', '-'));
            } else {
              clause();
            }
          }
          return "merge";
        case "ROLLBACK TABLE":
          args.put("table", next("a table name"));
          expect("TO");
          args.put("to_ref", next("a ref after TO"));
          onBranchAndRest();
          return "rollback_table";
        case "REVERT COMMIT":
          args.put("commit_id", next("a commit id"));
          onBranchAndRest();
          return "revert_commit";
        case "ALTER BRANCH":
          // ALTER BRANCH main SET PROTECTED [REQUIRE n APPROVALS] | UNSET PROTECTED
          args.put("name", next("a branch name"));
          boolean on;
          if (accept("SET")) {
            on = true;
          } else if (accept("UNSET")) {
            on = false;
          } else {
            throw LakeVersionException.invalid(
                "ALTER BRANCH takes SET PROTECTED or UNSET PROTECTED");
          }
          args.put("protected", on);
          expect("PROTECTED");
          if (on && accept("REQUIRE")) {
            String n = next("a number after REQUIRE");
            try {
              args.put("require_approvals", Integer.parseInt(n));
            } catch (NumberFormatException e) {
              throw LakeVersionException.invalid("REQUIRE needs a number, not '" + n + "'");
            }
            if (!accept("APPROVALS") && !accept("APPROVAL")) {
              throw LakeVersionException.invalid("REQUIRE n takes APPROVALS after the number");
            }
          }
          rest();
          return "set_protected";
        case "SHOW CHECKS":
          onBranchAndRest();
          return "list_checks";
        case "SHOW CHECK":
          // SHOW CHECK RUNS [ON BRANCH b] [LIMIT n]
          expect("RUNS");
          while (more()) {
            if (accept("ON")) {
              expect("BRANCH");
              args.put("branch", next("a branch after ON BRANCH"));
            } else if (accept("LIMIT")) {
              String limit = next("a number after LIMIT");
              try {
                args.put("max_runs", Integer.parseInt(limit));
              } catch (NumberFormatException e) {
                throw LakeVersionException.invalid("LIMIT needs a number, not '" + limit + "'");
              }
            } else {
              clause();
            }
          }
          return "check_runs";
        case "ADD CHECK":
          // ADD CHECK name ON BRANCH b AS 'sql' [TIMEOUT '60s'] [TABLES db.t, ...]
          //   [ALLOW MISSING]: a SQL check; Python and webhook checks stay CLI/REST/Python
          args.put("name", next("a check name"));
          onBranch();
          expect("AS");
          args.put("sql", next("the check's SQL as a string after AS"));
          while (more()) {
            if (accept("TIMEOUT")) {
              args.put("timeout_s", seconds(next("a duration after TIMEOUT, e.g. '60s'")));
            } else if (accept("TABLES")) {
              args.put("tables", tables());
            } else if (accept("ALLOW")) {
              expect("MISSING");
              args.put("allow_missing", true);
            } else {
              clause();
            }
          }
          return "add_check";
        case "DROP CHECK":
          if (accept("IF")) {
            expect("EXISTS");
            args.put("if_exists", true);
          }
          args.put("name", next("a check name"));
          onBranch();
          rest();
          return "drop_check";
        default:
          throw LakeVersionException.invalid("not a branch statement: " + a + " " + b);
      }
    }

    /** The required {@code ON BRANCH b} of a check statement. */
    private void onBranch() {
      expect("ON");
      expect("BRANCH");
      args.put("branch", next("a branch after ON BRANCH"));
    }

    /** {@code '60s'}, {@code 5m}, {@code 90} (seconds) as seconds; the server checks range. */
    private Double seconds(String text) {
      Matcher m = DURATION.matcher(text.trim());
      if (!m.matches()) {
        throw LakeVersionException.invalid("TIMEOUT needs a duration such as '30s' or '5m', not '"
            + text + "'");
      }
      String unit = m.group(2) == null ? "s" : m.group(2).toLowerCase(Locale.ROOT);
      return Double.parseDouble(m.group(1)) * DURATION_UNITS.get(unit);
    }

    /** {@code TABLES db.t, db.u}: comma-separated names up to the next clause. */
    private String tables() {
      List<String> text = new ArrayList<>();
      while (more() && !List.of("TIMEOUT", "ALLOW", "IN").contains(
          w.get(pos).toUpperCase(Locale.ROOT))) {
        text.add(w.get(pos++));
      }
      List<String> names = new ArrayList<>();
      for (String name : String.join(" ", text).split(",", -1)) {
        name = name.trim();
        if (name.isEmpty() || name.chars().anyMatch(Character::isWhitespace)) {
          throw LakeVersionException.invalid(
              "TABLES needs table names separated by commas, e.g. TABLES db.t, db.u");
        }
        names.add(name);
      }
      return String.join(",", names);
    }

    private void onBranchAndRest() {
      while (more()) {
        if (accept("ON")) {
          expect("BRANCH");
          args.put("branch", next("a branch after ON BRANCH"));
        } else {
          clause();
        }
      }
    }

    private void rest() {
      while (more()) {
        clause();
      }
    }

    /** The clause every statement accepts: {@code IN catalog}. */
    private void clause() {
      if (accept("IN")) {
        catalog = next("a catalog name after IN");
        return;
      }
      throw LakeVersionException.invalid(
          "unexpected '" + w.get(pos) + "' in: " + String.join(" ", w));
    }

    private boolean more() {
      return pos < w.size();
    }

    private String next(String what) {
      if (!more()) {
        throw LakeVersionException.invalid(
            "expected " + what + " at the end of: " + String.join(" ", w));
      }
      return w.get(pos++);
    }

    private boolean accept(String keyword) {
      if (more() && w.get(pos).equalsIgnoreCase(keyword)) {
        pos++;
        return true;
      }
      return false;
    }

    private void expect(String keyword) {
      if (!accept(keyword)) {
        String got = more() ? "'" + w.get(pos) + "'" : "the end";
        throw LakeVersionException.invalid(
            "expected " + keyword + " but found " + got + " in: " + String.join(" ", w));
      }
    }
  }
}
