// The model-spec parser: a hand-written lexer and recursive-descent parser that resolves each
// word's arguments as it reads them (docs/model-spec.md is the grammar). Errors point at the
// token that is wrong, never at the end of the spec, so a long spec stays debuggable.
#include "bnorm/model/spec.hpp"

#include "bnorm/model/builtin.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace bnorm {
namespace {

std::string format_spec_error(std::string_view source, std::string_view text, SpecPosition at,
                              const std::string& message) {
  std::string out = std::string(source) + ":" + std::to_string(at.line) + ":" +
                    std::to_string(at.column) + ": " + message;
  // The offending line, and a caret under the column (tabs copied so that the caret aligns).
  std::size_t begin = 0;
  for (int line = 1; line < at.line && begin < text.size(); ++line) {
    const std::size_t nl = text.find('\n', begin);
    begin = nl == std::string_view::npos ? text.size() : nl + 1;
  }
  std::size_t end = text.find('\n', begin);
  if (end == std::string_view::npos) end = text.size();
  std::string_view line = text.substr(begin, end - begin);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::string caret;
  for (int i = 0; i + 1 < at.column; ++i)
    caret += (static_cast<std::size_t>(i) < line.size() && line[i] == '\t') ? '\t' : ' ';
  out += "\n  " + std::string(line) + "\n  " + caret + "^";
  return out;
}

// ---- lexer

enum class TokenKind : std::uint8_t { word, number, lparen, rparen, comma, equals, bar, end };

struct Token {
  TokenKind kind = TokenKind::end;
  std::string text;
  SpecPosition position;
  bool is_integer = false;  // number without '.' or exponent
};

const char* describe_token(const Token& t) {
  switch (t.kind) {
    case TokenKind::word: return "word";
    case TokenKind::number: return "number";
    case TokenKind::lparen: return "'('";
    case TokenKind::rparen: return "')'";
    case TokenKind::comma: return "','";
    case TokenKind::equals: return "'='";
    case TokenKind::bar: return "'|'";
    case TokenKind::end: return "the end of the spec";
  }
  return "?";
}

std::string quoted(const Token& t) {
  if (t.kind == TokenKind::word || t.kind == TokenKind::number)
    return std::string(describe_token(t)) + " '" + t.text + "'";
  return describe_token(t);
}

bool is_word_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  Lexer(std::string_view text, std::string_view source) : text_(text), source_(source) {}

  std::vector<Token> tokens() {
    std::vector<Token> out;
    for (;;) {
      skip_space_and_comments();
      Token t;
      t.position = here();
      const std::size_t begin = i_;
      if (i_ >= text_.size()) {
        out.push_back(t);
        return out;
      }
      const char c = text_[i_];
      if (is_word_start(c)) {
        t.kind = TokenKind::word;
        while (i_ < text_.size() && is_word_char(text_[i_])) advance();
      } else if (is_digit(c) || c == '.' || c == '-' || c == '+') {
        lex_number(t, begin);
      } else {
        switch (c) {
          case '(': t.kind = TokenKind::lparen; break;
          case ')': t.kind = TokenKind::rparen; break;
          case ',': t.kind = TokenKind::comma; break;
          case '=': t.kind = TokenKind::equals; break;
          case '|': t.kind = TokenKind::bar; break;
          default:
            throw SpecError(source_, text_, t.position,
                            std::string("unexpected character '") + c +
                                "'; expected a layer word, a number or one of ( ) , = | #");
        }
        advance();
      }
      t.text = std::string(text_.substr(begin, i_ - begin));
      out.push_back(std::move(t));
    }
  }

 private:
  SpecPosition here() const { return {line_, static_cast<int>(i_ - line_start_) + 1}; }
  void advance() {
    if (text_[i_] == '\n') {
      ++line_;
      line_start_ = i_ + 1;
    }
    ++i_;
  }
  void skip_space_and_comments() {
    while (i_ < text_.size()) {
      const char c = text_[i_];
      if (c == '#') {
        while (i_ < text_.size() && text_[i_] != '\n') advance();
      } else if (std::isspace(static_cast<unsigned char>(c))) {
        advance();
      } else {
        return;
      }
    }
  }
  // [+-] digits [. digits] [e [+-] digits], or [+-] . digits ...; a letter right after is an error.
  void lex_number(Token& t, std::size_t begin) {
    t.kind = TokenKind::number;
    t.is_integer = true;
    if (text_[i_] == '-' || text_[i_] == '+') advance();
    bool digits = false;
    while (i_ < text_.size() && is_digit(text_[i_])) advance(), digits = true;
    if (i_ < text_.size() && text_[i_] == '.') {
      t.is_integer = false;
      advance();
      while (i_ < text_.size() && is_digit(text_[i_])) advance(), digits = true;
    }
    if (digits && i_ < text_.size() && (text_[i_] == 'e' || text_[i_] == 'E')) {
      t.is_integer = false;
      advance();
      if (i_ < text_.size() && (text_[i_] == '-' || text_[i_] == '+')) advance();
      bool exponent_digits = false;
      while (i_ < text_.size() && is_digit(text_[i_])) advance(), exponent_digits = true;
      digits = exponent_digits;
    }
    if (!digits || (i_ < text_.size() && is_word_char(text_[i_]))) {
      while (i_ < text_.size() && (is_word_char(text_[i_]) || text_[i_] == '.')) advance();
      throw SpecError(source_, text_, t.position,
                      "malformed number '" + std::string(text_.substr(begin, i_ - begin)) +
                          "'; expected an integer (32) or a decimal (0.5, 1e-3)");
    }
  }

  std::string_view text_, source_;
  std::size_t i_ = 0, line_start_ = 0;
  int line_ = 1;
};

// ---- words and their arguments

enum class ArgType : std::uint8_t {
  positive_int,    // sizes, kernel, stride, dilation, groups
  nonneg_int,      // pool padding
  conv_padding,    // a non-negative integer or `same`
  boolean,         // true / false
  probability,     // [0, 1)
  eps,             // >= 0
  momentum,        // [0, 1] or `none`
};

struct ArgDef {
  const char* name;
  const char* long_name;  // accepted as well (nullptr: none)
  ArgType type;
};

// The positional arguments of a word are the first `positional` entries of its table.
struct WordDef {
  std::vector<ArgDef> args;
  std::size_t positional = 0;
};

const ArgDef arg_out{"out", nullptr, ArgType::positive_int};
const ArgDef arg_k{"k", "kernel", ArgType::positive_int};
const ArgDef arg_s{"s", "stride", ArgType::positive_int};
const ArgDef arg_conv_p{"p", "padding", ArgType::conv_padding};
const ArgDef arg_pool_p{"p", "padding", ArgType::nonneg_int};
const ArgDef arg_d{"d", "dilation", ArgType::positive_int};
const ArgDef arg_g{"g", "groups", ArgType::positive_int};
const ArgDef arg_bias{"bias", nullptr, ArgType::boolean};

const WordDef& word_def(SpecKind kind, bool shorthand) {
  static const WordDef conv{{arg_out, arg_k, arg_s, arg_conv_p, arg_d, arg_g, arg_bias}, 4};
  static const WordDef conv_kxk{{arg_out, arg_s, arg_conv_p, arg_d, arg_g, arg_bias}, 2};
  static const WordDef linear{{arg_out, arg_bias}, 1};
  static const WordDef bn{{{"eps", nullptr, ArgType::eps}, {"momentum", nullptr, ArgType::momentum},
                           {"affine", nullptr, ArgType::boolean}}, 0};
  static const WordDef pool{{arg_k, arg_s, arg_pool_p}, 3};
  static const WordDef pool_n{{arg_s, arg_pool_p}, 0};
  static const WordDef dropout{{{"p", nullptr, ArgType::probability}}, 1};
  static const WordDef none{{}, 0};
  switch (kind) {
    case SpecKind::conv: return shorthand ? conv_kxk : conv;
    case SpecKind::linear: return linear;
    case SpecKind::bn: return bn;
    case SpecKind::maxpool:
    case SpecKind::avgpool: return shorthand ? pool_n : pool;
    case SpecKind::dropout: return dropout;
    default: return none;
  }
}

// "conv5x5" -> 5, "maxpool3" -> 3; nullopt if `word` is not prefix + digits (+ "x" + digits).
std::optional<std::int64_t> trailing_size(std::string_view word, std::string_view prefix, bool square) {
  if (word.size() <= prefix.size() || word.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::string_view rest = word.substr(prefix.size());
  auto read = [](std::string_view& s) -> std::optional<std::int64_t> {
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr == s.data()) return std::nullopt;
    s.remove_prefix(static_cast<std::size_t>(ptr - s.data()));
    return v;
  };
  const auto a = read(rest);
  if (!a) return std::nullopt;
  if (!square) return rest.empty() ? a : std::nullopt;
  if (rest.empty() || rest[0] != 'x') return std::nullopt;
  rest.remove_prefix(1);
  const auto b = read(rest);
  if (!b || !rest.empty()) return std::nullopt;
  return *a == *b ? a : std::optional<std::int64_t>(-1);  // -1: not square
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

class Parser {
 public:
  Parser(std::string_view text, std::string_view source)
      : text_(text), source_(source), tokens_(Lexer(text, source).tokens()) {}

  std::vector<LayerSpec> parse_all() {
    std::vector<LayerSpec> layers = parse_sequence();
    if (peek().kind != TokenKind::end) {
      const Token& t = peek();
      if (t.kind == TokenKind::rparen) fail(t, "unbalanced ')': no '(' is open here");
      if (t.kind == TokenKind::bar) fail(t, "'|' is only allowed inside res(...), before its shortcut");
      fail(t, "unexpected " + quoted(t) + "; expected a layer word");
    }
    if (layers.empty()) fail(peek(), "empty spec; expected at least one layer word");
    return layers;
  }

 private:
  [[noreturn]] void fail(const Token& at, const std::string& message) const {
    throw SpecError(source_, text_, at.position, message);
  }
  const Token& peek() const { return tokens_[pos_]; }
  const Token& next() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }

  // Layer words up to ')' / '|' / the end.
  std::vector<LayerSpec> parse_sequence() {
    std::vector<LayerSpec> layers;
    while (peek().kind == TokenKind::word) layers.push_back(parse_layer());
    if (peek().kind == TokenKind::number || peek().kind == TokenKind::comma ||
        peek().kind == TokenKind::equals || peek().kind == TokenKind::lparen)
      fail(peek(), "unexpected " + quoted(peek()) + "; expected a layer word" +
                       (peek().kind == TokenKind::lparen ? " before '('" : ""));
    return layers;
  }

  LayerSpec parse_layer() {
    const Token& word = next();
    LayerSpec layer;
    layer.word = word.text;
    layer.position = word.position;
    if (word.text == "res") return parse_residual(std::move(layer));
    bool shorthand = false;
    resolve_word(word, layer, shorthand);

    // Arguments: '(' [arg (',' arg)*] ')'.
    std::vector<std::pair<const ArgDef*, Token>> given;
    if (peek().kind == TokenKind::lparen) {
      const Token& open = next();
      const WordDef& def = word_def(layer.kind, shorthand);
      std::size_t index = 0;
      bool seen_keyword = false;
      if (peek().kind != TokenKind::rparen) {
        for (;;) {
          given.push_back(parse_argument(word, def, index++, seen_keyword, given));
          if (peek().kind == TokenKind::comma) {
            next();
            continue;
          }
          if (peek().kind == TokenKind::rparen) break;
          if (peek().kind == TokenKind::end)
            fail(peek(), "missing ')' to close the '(' of '" + word.text + "' at column " +
                             std::to_string(open.position.column) +
                             (open.position.line != peek().position.line
                                  ? " of line " + std::to_string(open.position.line)
                                  : ""));
          fail(peek(), "unexpected " + quoted(peek()) + " in the arguments of '" + word.text +
                           "'; expected ',' or ')'");
        }
      }
      next();  // ')'
    }
    for (auto& [def, value] : given) apply_argument(layer, *def, value);
    check_required(word, layer, shorthand, given);
    return layer;
  }

  LayerSpec parse_residual(LayerSpec layer) {
    layer.kind = SpecKind::residual;
    if (peek().kind != TokenKind::lparen)
      fail(peek(), "expected '(' after 'res': res(<body layers> [| <shortcut layers>])");
    const Token open = next();
    layer.body = parse_sequence();
    if (layer.body.empty()) fail(peek(), "empty residual body; expected layer words after 'res('");
    if (peek().kind == TokenKind::bar) {
      next();
      layer.has_shortcut = true;
      layer.shortcut = parse_sequence();
    }
    if (peek().kind == TokenKind::bar) fail(peek(), "a residual block has one shortcut: a second '|' is not allowed");
    if (peek().kind != TokenKind::rparen)
      fail(peek(), "missing ')' to close the '(' of 'res' at line " + std::to_string(open.position.line) +
                       ", column " + std::to_string(open.position.column) + "; found " + quoted(peek()));
    next();
    return layer;
  }

  void resolve_word(const Token& word, LayerSpec& layer, bool& shorthand) {
    const std::string& w = word.text;
    static const std::vector<std::pair<const char*, SpecKind>> plain = {
        {"conv", SpecKind::conv},       {"linear", SpecKind::linear},   {"bn", SpecKind::bn},
        {"bn1d", SpecKind::bn},         {"bn2d", SpecKind::bn},         {"maxpool", SpecKind::maxpool},
        {"avgpool", SpecKind::avgpool}, {"gap", SpecKind::gap},         {"relu", SpecKind::relu},
        {"sigmoid", SpecKind::sigmoid}, {"tanh", SpecKind::tanh},       {"dropout", SpecKind::dropout},
        {"flatten", SpecKind::flatten},
    };
    for (const auto& [name, kind] : plain) {
      if (w == name) {
        layer.kind = kind;
        if (w == "bn1d") layer.bn_rank = SpecBnRank::bn1d;
        if (w == "bn2d") layer.bn_rank = SpecBnRank::bn2d;
        if (kind == SpecKind::maxpool || kind == SpecKind::avgpool) layer.stride = 0;
        return;
      }
    }
    if (const auto k = trailing_size(w, "conv", true)) {
      if (*k < 1 || *k % 2 == 0)
        fail(word, "'" + w + "': the convKxK shorthand needs an odd square kernel (padding K/2 keeps the size); "
                   "write conv(<channels>, k=<kernel>, p=<padding>) for other kernels");
      layer.kind = SpecKind::conv;
      layer.kernel = *k;
      layer.padding = -1;  // "same", resolved once the dilation is known
      shorthand = true;
      return;
    }
    for (const auto& [prefix, kind] : {std::pair{"maxpool", SpecKind::maxpool}, std::pair{"avgpool", SpecKind::avgpool}}) {
      if (const auto k = trailing_size(w, prefix, false)) {
        if (*k < 1) fail(word, "'" + w + "': the pool size must be >= 1");
        layer.kind = kind;
        layer.kernel = *k;
        layer.stride = 0;
        shorthand = true;
        return;
      }
    }
    std::string message = "unknown layer '" + w + "'";
    std::string best;
    std::size_t best_distance = 3;  // suggest only close matches
    for (const std::string& known : spec_words()) {
      const std::size_t d = edit_distance(w, known);
      if (d < best_distance) best_distance = d, best = known;
    }
    if (!best.empty()) message += " (did you mean '" + best + "'?)";
    fail(word, message + "; expected one of " + join(spec_words()));
  }

  std::pair<const ArgDef*, Token> parse_argument(const Token& word, const WordDef& def, std::size_t index,
                                                 bool& seen_keyword,
                                                 const std::vector<std::pair<const ArgDef*, Token>>& given) {
    const ArgDef* arg = nullptr;
    Token key;
    if (peek().kind != TokenKind::number && peek().kind != TokenKind::word)
      fail(peek(), "expected an argument for '" + word.text + "', found " + quoted(peek()));
    if (peek().kind == TokenKind::word && tokens_[pos_ + 1].kind == TokenKind::equals) {
      key = next();
      next();  // '='
      seen_keyword = true;
      for (const ArgDef& a : def.args)
        if (key.text == a.name || (a.long_name && key.text == a.long_name)) arg = &a;
      if (!arg) {
        std::vector<std::string> names;
        for (const ArgDef& a : def.args) names.push_back(a.long_name ? std::string(a.name) + " (" + a.long_name + ")" : a.name);
        fail(key, "unknown keyword '" + key.text + "' for '" + word.text + "'" +
                      (names.empty() ? "; it takes no arguments" : "; expected one of " + join(names)));
      }
    } else {
      if (seen_keyword) fail(peek(), "positional argument after a keyword argument in '" + word.text + "'");
      if (index >= def.positional) {
        std::string expected;
        for (std::size_t i = 0; i < def.positional; ++i) expected += (i ? ", " : "") + std::string(def.args[i].name);
        fail(peek(), "too many positional arguments for '" + word.text + "'" +
                         (def.positional == 0 ? "; it takes none" + std::string(def.args.empty() ? "" : " (keywords only)")
                                              : "; it takes at most " + std::to_string(def.positional) + " (" + expected + ")"));
      }
      arg = &def.args[index];
    }
    for (const auto& [other, value] : given)
      if (other == arg) fail(key.text.empty() ? peek() : key, "argument '" + std::string(arg->name) + "' of '" + word.text + "' given twice");
    const Token& value = peek();
    if (value.kind != TokenKind::number && value.kind != TokenKind::word)
      fail(value, "expected a value for '" + std::string(arg->name) + "' of '" + word.text + "', found " + quoted(value));
    return {arg, next()};
  }

  std::int64_t integer(const Token& v, const ArgDef& a, std::int64_t minimum) const {
    if (v.kind != TokenKind::number || !v.is_integer)
      fail(v, "'" + std::string(a.name) + "' must be an integer, got '" + v.text + "'");
    std::int64_t value = 0;
    const char* begin = v.text.data() + (v.text[0] == '+' ? 1 : 0);
    auto [ptr, ec] = std::from_chars(begin, v.text.data() + v.text.size(), value);
    if (ec != std::errc() || ptr != v.text.data() + v.text.size())
      fail(v, "'" + std::string(a.name) + "' is out of range: " + v.text);
    if (value < minimum)
      fail(v, "'" + std::string(a.name) + "' must be >= " + std::to_string(minimum) + ", got " + v.text);
    return value;
  }
  double decimal(const Token& v, const ArgDef& a) const {
    if (v.kind != TokenKind::number) fail(v, "'" + std::string(a.name) + "' must be a number, got '" + v.text + "'");
    const double value = std::strtod(v.text.c_str(), nullptr);
    if (!std::isfinite(value)) fail(v, "'" + std::string(a.name) + "' must be finite, got " + v.text);
    return value;
  }

  void apply_argument(LayerSpec& layer, const ArgDef& a, const Token& v) const {
    const std::string name = a.name;
    switch (a.type) {
      case ArgType::positive_int:
      case ArgType::nonneg_int: {
        const std::int64_t value = integer(v, a, a.type == ArgType::positive_int ? 1 : 0);
        if (name == "out") layer.out = value;
        else if (name == "k") layer.kernel = value;
        else if (name == "s") layer.stride = value;
        else if (name == "p") layer.padding = value;
        else if (name == "d") layer.dilation = value;
        else if (name == "g") layer.groups = value;
        return;
      }
      case ArgType::conv_padding:
        layer.padding = (v.kind == TokenKind::word && v.text == "same") ? -1 : -2;
        if (layer.padding == -2) {
          if (v.kind == TokenKind::word) fail(v, "'p' must be a non-negative integer or 'same', got '" + v.text + "'");
          layer.padding = integer(v, a, 0);
        }
        return;
      case ArgType::boolean: {
        if (v.kind != TokenKind::word || (v.text != "true" && v.text != "false"))
          fail(v, "'" + name + "' must be true or false, got '" + v.text + "'");
        if (name == "bias") layer.bias = v.text == "true";
        else layer.affine = v.text == "true";
        return;
      }
      case ArgType::probability: {
        const double p = decimal(v, a);
        if (!(p >= 0.0 && p < 1.0)) fail(v, "dropout probability must be in [0, 1), got " + v.text);
        layer.p = p;
        return;
      }
      case ArgType::eps: {
        const double eps = decimal(v, a);
        if (!(eps >= 0.0)) fail(v, "'eps' must be >= 0, got " + v.text);
        layer.eps = eps;
        return;
      }
      case ArgType::momentum: {
        if (v.kind == TokenKind::word) {
          if (v.text != "none") fail(v, "'momentum' must be a number in [0, 1] or none, got '" + v.text + "'");
          layer.momentum = std::optional<double>();
          return;
        }
        const double m = decimal(v, a);
        if (!(m >= 0.0 && m <= 1.0)) fail(v, "'momentum' must be in [0, 1] or none, got " + v.text);
        layer.momentum = std::optional<double>(m);
        return;
      }
    }
  }

  void check_required(const Token& word, LayerSpec& layer, bool shorthand,
                      const std::vector<std::pair<const ArgDef*, Token>>& given) const {
    auto has = [&](const char* name) {
      return std::any_of(given.begin(), given.end(), [&](const auto& g) { return std::string(g.first->name) == name; });
    };
    const std::string example =
        layer.kind == SpecKind::linear ? "linear(10)" : shorthand ? word.text + "(64)" : "conv(64, k=3)";
    if ((layer.kind == SpecKind::conv || layer.kind == SpecKind::linear) && !has("out"))
      fail(word, "'" + word.text + "' needs its number of output " +
                     (layer.kind == SpecKind::conv ? "channels" : "features") + ", e.g. " + example);
    if (layer.kind == SpecKind::conv && !shorthand && !has("k"))
      fail(word, "'conv' needs a kernel size, e.g. conv(64, k=3, p=1); or use the shorthand conv3x3(64)");
    if ((layer.kind == SpecKind::maxpool || layer.kind == SpecKind::avgpool) && !shorthand && !has("k"))
      fail(word, "'" + word.text + "' needs a kernel size, e.g. " + word.text + "(2) or " + word.text + "(3, s=2, p=1)");
    if (layer.kind == SpecKind::conv && layer.padding == -1) {
      if (layer.kernel % 2 == 0)
        fail(word, "p=same needs an odd kernel, got k=" + std::to_string(layer.kernel));
      layer.padding = layer.dilation * (layer.kernel - 1) / 2;
    }
  }

  std::string_view text_, source_;
  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
};

SpecPosition position_of(std::string_view text, std::size_t offset) {
  SpecPosition p;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') ++p.line, p.column = 1;
    else ++p.column;
  }
  return p;
}

}  // namespace

SpecError::SpecError(std::string_view source, std::string_view text, SpecPosition position,
                     const std::string& message)
    : std::invalid_argument(format_spec_error(source, text, position, message)),
      position_(position),
      message_(message) {}

const char* to_string(SpecKind kind) {
  switch (kind) {
    case SpecKind::conv: return "conv";
    case SpecKind::linear: return "linear";
    case SpecKind::bn: return "bn";
    case SpecKind::maxpool: return "maxpool";
    case SpecKind::avgpool: return "avgpool";
    case SpecKind::gap: return "gap";
    case SpecKind::relu: return "relu";
    case SpecKind::sigmoid: return "sigmoid";
    case SpecKind::tanh: return "tanh";
    case SpecKind::dropout: return "dropout";
    case SpecKind::flatten: return "flatten";
    case SpecKind::residual: return "res";
  }
  return "?";
}

const std::vector<std::string>& spec_words() {
  static const std::vector<std::string> words = {
      "conv", "conv3x3", "conv1x1", "conv5x5", "linear", "bn", "bn1d", "bn2d", "maxpool", "maxpool2",
      "avgpool", "avgpool2", "gap", "relu", "sigmoid", "tanh", "dropout", "flatten", "res"};
  return words;
}

SpecAst parse_spec(std::string_view text, std::string_view source) {
  SpecAst ast{.text = std::string(text), .source = std::string(source)};
  // A built-in name given where a spec belongs: say so rather than "malformed number '-mini'".
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  const std::size_t last = text.find_last_not_of(" \t\r\n");
  if (first != std::string_view::npos && is_builtin(text.substr(first, last - first + 1)))
    throw SpecError(source, text, position_of(text, first),
                    "'" + std::string(text.substr(first, last - first + 1)) +
                        "' is a built-in model name, not a spec; expand it first (expand_spec / builtin_spec)");
  ast.layers = Parser(ast.text, ast.source).parse_all();
  return ast;
}

}  // namespace bnorm
