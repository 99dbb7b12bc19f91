package io.lakeversion.spark;

import java.util.ArrayList;
import java.util.List;

/**
 * Finds unquoted {@code db@ref.table} names in SQL text and backquotes them.
 *
 * <p>Spark's grammar has no {@code @} in identifiers, so {@code db@dev.orders} is a syntax
 * error until it becomes {@code `db@dev`.orders}, which the catalog hands to the server as
 * the namespace {@code db@dev}. String literals, comments and quoted identifiers are copied
 * untouched; a ref ends at the next {@code .} (backquote dotted refs yourself:
 * {@code `db@v1.0`.orders}). A ref may name a previous head: {@code db@main@{1}.orders}.
 */
public final class RefSyntax {
  private RefSyntax() {}

  /** Decides whether a two-part {@code db@ref.table} needs a catalog in front. */
  public interface CatalogPrefix {
    /** The catalog to put in front of {@code db@ref.table}, or null to leave it as is. */
    String forTwoPartName();
  }

  /** True when {@code sql} has an unquoted {@code @} outside literals and comments. */
  public static boolean mentionsRef(String sql) {
    return !rewrite(sql, null).equals(sql);
  }

  /** Rewrite every unquoted name with an {@code @ref} part into backquoted form. */
  public static String rewrite(String sql, CatalogPrefix prefix) {
    if (sql == null || sql.indexOf('@') < 0) {
      return sql;
    }
    StringBuilder out = new StringBuilder(sql.length() + 8);
    int n = sql.length();
    int i = 0;
    while (i < n) {
      char c = sql.charAt(i);
      if (c == '\'' || c == '"') {
        int end = skipString(sql, i);
        out.append(sql, i, end);
        i = end;
      } else if (c == '-' && i + 1 < n && sql.charAt(i + 1) == '-') {
        int end = sql.indexOf('\n', i);
        end = end < 0 ? n : end;
        out.append(sql, i, end);
        i = end;
      } else if (c == '/' && i + 1 < n && sql.charAt(i + 1) == '*') {
        int end = skipBlockComment(sql, i);
        out.append(sql, i, end);
        i = end;
      } else if (c == '`' || isIdentStart(c)) {
        if (isIdentStart(c) && i > 0 && isIdentPart(sql.charAt(i - 1))) {
          out.append(c); // inside a word we already passed (cannot happen, kept for safety)
          i++;
          continue;
        }
        i = chain(sql, i, out, prefix);
      } else {
        out.append(c);
        i++;
      }
    }
    return out.toString();
  }

  /** Reads a dotted name starting at {@code start}, appends it (rewritten if needed). */
  private static int chain(String sql, int start, StringBuilder out, CatalogPrefix prefix) {
    int n = sql.length();
    List<String> parts = new ArrayList<>();
    List<Boolean> hasRef = new ArrayList<>();
    int i = start;
    while (true) {
      if (i < n && sql.charAt(i) == '`') {
        int end = skipQuotedIdent(sql, i);
        parts.add(sql.substring(i, end));
        hasRef.add(false);
        i = end;
      } else if (i < n && isIdentPart(sql.charAt(i))) {
        int j = i;
        while (j < n && isIdentPart(sql.charAt(j))) {
          j++;
        }
        boolean ref = false;
        if (j + 1 < n && sql.charAt(j) == '@' && isRefChar(sql.charAt(j + 1))) {
          ref = true;
          j++;
          while (j < n && isRefChar(sql.charAt(j))) {
            j++;
          }
          int previous = previousHead(sql, j);
          if (previous > j) { // main@{1}, then maybe ~N
            j = previous;
            while (j < n && isRefChar(sql.charAt(j))) {
              j++;
            }
          }
        }
        parts.add(sql.substring(i, j));
        hasRef.add(ref);
        i = j;
      } else {
        break;
      }
      if (i + 1 < n && sql.charAt(i) == '.'
          && (sql.charAt(i + 1) == '`' || isIdentPart(sql.charAt(i + 1)))) {
        i++;
      } else {
        break;
      }
    }
    if (parts.isEmpty()) { // a lone backquote without a name: copy one char
      out.append(sql.charAt(start));
      return start + 1;
    }
    if (!hasRef.contains(Boolean.TRUE)) {
      out.append(sql, start, i);
      return i;
    }
    if (prefix != null && parts.size() == 2 && hasRef.get(0)) {
      String catalog = prefix.forTwoPartName();
      if (catalog != null) {
        out.append(quote(catalog)).append('.');
      }
    }
    for (int k = 0; k < parts.size(); k++) {
      if (k > 0) {
        out.append('.');
      }
      out.append(hasRef.get(k) ? quote(parts.get(k)) : parts.get(k));
    }
    return i;
  }

  /** The end of a {@code @{N}} (a previous head, from the reflog) at {@code at}, else
   *  {@code at}. */
  static int previousHead(String sql, int at) {
    int n = sql.length();
    if (at + 2 >= n || sql.charAt(at) != '@' || sql.charAt(at + 1) != '{') {
      return at;
    }
    int j = at + 2;
    while (j < n && Character.isDigit(sql.charAt(j))) {
      j++;
    }
    return j > at + 2 && j < n && sql.charAt(j) == '}' ? j + 1 : at;
  }

  /** Backquote an identifier the way Spark reads it back. */
  public static String quote(String ident) {
    return "`" + ident.replace("`", "``") + "`";
  }

  static int skipString(String sql, int start) {
    char q = sql.charAt(start);
    int i = start + 1;
    int n = sql.length();
    while (i < n) {
      char c = sql.charAt(i);
      if (c == '\\') {
        i += 2;
      } else if (c == q) {
        return i + 1;
      } else {
        i++;
      }
    }
    return n;
  }

  static int skipQuotedIdent(String sql, int start) {
    int i = start + 1;
    int n = sql.length();
    while (i < n) {
      if (sql.charAt(i) == '`') {
        if (i + 1 < n && sql.charAt(i + 1) == '`') {
          i += 2;
          continue;
        }
        return i + 1;
      }
      i++;
    }
    return n;
  }

  /** Spark's bracketed comments nest: {@code /* a /* b *\/ c *\/}. */
  static int skipBlockComment(String sql, int start) {
    int depth = 0;
    int i = start;
    int n = sql.length();
    while (i < n) {
      if (sql.startsWith("/*", i)) {
        depth++;
        i += 2;
      } else if (sql.startsWith("*/", i)) {
        depth--;
        i += 2;
        if (depth == 0) {
          return i;
        }
      } else {
        i++;
      }
    }
    return n;
  }

  static boolean isIdentStart(char c) {
    return Character.isLetterOrDigit(c) || c == '_';
  }

  static boolean isIdentPart(char c) {
    return Character.isLetterOrDigit(c) || c == '_';
  }

  /** Characters of a ref expression after {@code @}: names, {@code ~N}, {@code #time}. */
  static boolean isRefChar(char c) {
    return Character.isLetterOrDigit(c) || c == '_' || c == '-' || c == '/' || c == '~'
        || c == '#' || c == ':' || c == '+';
  }
}
