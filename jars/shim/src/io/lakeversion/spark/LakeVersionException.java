package io.lakeversion.spark;

/**
 * An error of spark-lakeversion's tree, raised on the JVM.
 *
 * <p>The message starts with {@code [LAKEVERSION:<CODE>]} so that any layer that only sees
 * text (Spark's error wrapping, PySpark, a log file) can still tell which error it was; the
 * Python side maps the code back onto {@code spark_lakeversion.errors}. {@link #payload()}
 * keeps the server's JSON error body (conflicts, merge result) for callers that want it.
 */
public class LakeVersionException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  public static final String MARKER = "[LAKEVERSION:";

  private final String code;
  private final String payload;

  public LakeVersionException(String code, String message) {
    this(code, message, null, null);
  }

  public LakeVersionException(String code, String message, String payload, Throwable cause) {
    super(MARKER + code + "] " + message, cause);
    this.code = code;
    this.payload = payload;
  }

  /** Stable error code, e.g. {@code REF_NOT_FOUND}; see spark_lakeversion/errors.py. */
  public String code() {
    return code;
  }

  /** The server's JSON error body, or null when the error was raised locally. */
  public String payload() {
    return payload;
  }

  static LakeVersionException invalid(String message) {
    return new LakeVersionException("INVALID_INPUT", message);
  }
}
