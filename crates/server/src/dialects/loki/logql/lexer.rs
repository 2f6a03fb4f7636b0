//! LogQL's tokens, each with the byte offset it starts at so that every error can
//! name its line and column. Numbers followed by a unit are durations (`5m`,
//! `1h30m`, `250ms`) or byte sizes (`20MB`, `1KiB`), as in Loki; `#` starts a
//! comment that runs to the end of the line.

use super::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// `:` (only in subqueries, which are refused by name)
    Colon,
    /// `|`
    Pipe,
    /// `|=`
    PipeExact,
    /// `|~`
    PipeMatch,
    /// `|>` and `!>`: pattern line filters (not supported, but recognised).
    PipePattern,
    NotPattern,
    /// `!=`
    NotEqual,
    /// `!~`
    NotMatch,
    /// `=`
    Equal,
    /// `=~`
    Match,
    /// `==`
    EqualEqual,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Caret,
    Str(String),
    Number(f64),
    /// Nanoseconds.
    Duration(i64),
    Bytes(u64),
    Ident(String),
    End,
}

impl Token {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Token::Str(s) => format!("string {s:?}"),
            Token::Number(n) => format!("number {n}"),
            Token::Duration(_) => "duration".into(),
            Token::Bytes(_) => "byte size".into(),
            Token::Ident(name) => format!("identifier {name}"),
            Token::End => "end of query".into(),
            other => other.symbol().into(),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Token::LBrace => "{",
            Token::RBrace => "}",
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::Comma => ",",
            Token::Colon => ":",
            Token::Pipe => "|",
            Token::PipeExact => "|=",
            Token::PipeMatch => "|~",
            Token::PipePattern => "|>",
            Token::NotPattern => "!>",
            Token::NotEqual => "!=",
            Token::NotMatch => "!~",
            Token::Equal => "=",
            Token::Match => "=~",
            Token::EqualEqual => "==",
            Token::Greater => ">",
            Token::GreaterEqual => ">=",
            Token::Less => "<",
            Token::LessEqual => "<=",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::Star => "*",
            Token::Slash => "/",
            Token::Percent => "%",
            Token::Caret => "^",
            _ => "token",
        }
    }
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub token: Token,
    pub at: usize,
}

pub fn tokenize(input: &str) -> Result<Vec<Spanned>, ParseError> {
    let mut lexer = Lexer { input, at: 0 };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_blanks();
        let at = lexer.at;
        let token = lexer.next_token()?;
        let end = token == Token::End;
        tokens.push(Spanned { token, at });
        if end {
            return Ok(tokens);
        }
    }
}

struct Lexer<'a> {
    input: &'a str,
    at: usize,
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.input[self.at..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        Some(c)
    }

    fn skip_blanks(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.bump();
            } else if c == '#' {
                while let Some(c) = self.bump() {
                    if c == '\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
    }

    fn error(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError::new(self.input, at, message)
    }

    fn next_token(&mut self) -> Result<Token, ParseError> {
        let at = self.at;
        let Some(c) = self.bump() else {
            return Ok(Token::End);
        };
        let next = self.peek();
        let mut two = |token: Token| {
            self.bump();
            Ok(token)
        };
        match (c, next) {
            ('|', Some('=')) => two(Token::PipeExact),
            ('|', Some('~')) => two(Token::PipeMatch),
            ('|', Some('>')) => two(Token::PipePattern),
            ('|', _) => Ok(Token::Pipe),
            ('!', Some('=')) => two(Token::NotEqual),
            ('!', Some('~')) => two(Token::NotMatch),
            ('!', Some('>')) => two(Token::NotPattern),
            ('=', Some('~')) => two(Token::Match),
            ('=', Some('=')) => two(Token::EqualEqual),
            ('=', _) => Ok(Token::Equal),
            ('>', Some('=')) => two(Token::GreaterEqual),
            ('>', _) => Ok(Token::Greater),
            ('<', Some('=')) => two(Token::LessEqual),
            ('<', _) => Ok(Token::Less),
            ('{', _) => Ok(Token::LBrace),
            ('}', _) => Ok(Token::RBrace),
            ('(', _) => Ok(Token::LParen),
            (')', _) => Ok(Token::RParen),
            ('[', _) => Ok(Token::LBracket),
            (']', _) => Ok(Token::RBracket),
            (',', _) => Ok(Token::Comma),
            (':', _) => Ok(Token::Colon),
            ('+', _) => Ok(Token::Plus),
            ('-', _) => Ok(Token::Minus),
            ('*', _) => Ok(Token::Star),
            ('/', _) => Ok(Token::Slash),
            ('%', _) => Ok(Token::Percent),
            ('^', _) => Ok(Token::Caret),
            ('"', _) => self.quoted(at).map(Token::Str),
            ('`', _) => self.raw(at).map(Token::Str),
            (c, _)
                if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) =>
            {
                self.number(at)
            }
            (c, _) if c.is_ascii_alphabetic() || c == '_' => {
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.bump();
                }
                Ok(Token::Ident(self.input[at..self.at].to_string()))
            }
            (c, _) => Err(self.error(at, format!("syntax error: unexpected character {c:?}"))),
        }
    }

    /// A Go-style double-quoted string with backslash escapes.
    fn quoted(&mut self, start: usize) -> Result<String, ParseError> {
        let mut text = String::new();
        loop {
            let at = self.at;
            match self.bump() {
                None => return Err(self.error(start, "syntax error: unterminated string")),
                Some('"') => return Ok(text),
                Some('\\') => text.push(self.escape(at)?),
                Some(c) => text.push(c),
            }
        }
    }

    fn escape(&mut self, at: usize) -> Result<char, ParseError> {
        let invalid = |lexer: &Self| lexer.error(at, "syntax error: invalid escape in string");
        Ok(match self.bump().ok_or_else(|| invalid(self))? {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'v' => '\u{b}',
            '0' => '\0',
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            'x' => self.hex_escape(2, at)?,
            'u' => self.hex_escape(4, at)?,
            'U' => self.hex_escape(8, at)?,
            _ => return Err(invalid(self)),
        })
    }

    fn hex_escape(&mut self, digits: usize, at: usize) -> Result<char, ParseError> {
        let rest = self.rest();
        let hex = rest
            .get(..digits)
            .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
        let code = hex.and_then(|h| u32::from_str_radix(h, 16).ok());
        match code.and_then(char::from_u32) {
            Some(c) => {
                self.at += digits;
                Ok(c)
            }
            None => Err(self.error(at, "syntax error: invalid escape in string")),
        }
    }

    /// A backtick string: no escapes at all, as in Go.
    fn raw(&mut self, start: usize) -> Result<String, ParseError> {
        match self.rest().find('`') {
            Some(end) => {
                let text = self.rest()[..end].to_string();
                self.at += end + 1;
                Ok(text)
            }
            None => Err(self.error(start, "syntax error: unterminated raw string")),
        }
    }

    /// A number, optionally followed by duration or byte-size units.
    fn number(&mut self, start: usize) -> Result<Token, ParseError> {
        self.digits_and_fraction();
        if matches!(self.peek(), Some('e' | 'E')) {
            let save = self.at;
            self.bump();
            if matches!(self.peek(), Some('+' | '-')) {
                self.bump();
            }
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            } else {
                // `5e` is not an exponent: back off and read the letters as a unit.
                self.at = save;
            }
        }
        if !self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            let text = &self.input[start..self.at];
            return text
                .parse::<f64>()
                .map(Token::Number)
                .map_err(|_| self.error(start, format!("syntax error: invalid number {text:?}")));
        }
        // A unit follows: read the whole word (`1h30m`, `20MB`) and decide which kind.
        self.at = start;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
        {
            self.bump();
        }
        let word = &self.input[start..self.at];
        if let Some(nanos) = parse_duration(word) {
            return Ok(Token::Duration(nanos));
        }
        if let Some(bytes) = parse_bytes(word) {
            return Ok(Token::Bytes(bytes));
        }
        Err(self.error(
            start,
            format!("syntax error: {word:?} is not a number, duration or byte size"),
        ))
    }

    fn digits_and_fraction(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        if self.peek() == Some('.') {
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
    }
}

const NANOS_PER_SECOND: f64 = 1e9;

/// A Go / Prometheus duration: one or more `<number><unit>` parts (`1h30m`, `1.5s`,
/// `250ms`, `7d`), in nanoseconds. `None` for anything else or an overflow.
pub fn parse_duration(text: &str) -> Option<i64> {
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => NANOS_PER_SECOND,
            "m" => 60.0 * NANOS_PER_SECOND,
            "h" => 3600.0 * NANOS_PER_SECOND,
            "d" => 86_400.0 * NANOS_PER_SECOND,
            "w" => 7.0 * 86_400.0 * NANOS_PER_SECOND,
            "y" => 365.0 * 86_400.0 * NANOS_PER_SECOND,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * unit;
    }
    (total.is_finite() && total <= i64::MAX as f64).then_some(total.round() as i64)
}

/// A byte size as Loki reads one (`20MB` = 20 000 000, `1KiB` = 1024, `5B`).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let number: f64 = text[..split].parse().ok()?;
    let unit = match text[split..].to_ascii_uppercase().as_str() {
        "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "PB" => 1e15,
        "KIB" => 1024.0,
        "MIB" => 1024f64.powi(2),
        "GIB" => 1024f64.powi(3),
        "TIB" => 1024f64.powi(4),
        "PIB" => 1024f64.powi(5),
        _ => return None,
    };
    let bytes = number * unit;
    (bytes.is_finite() && bytes <= u64::MAX as f64).then_some(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(input: &str) -> Vec<Token> {
        tokenize(input)
            .expect("lexes")
            .into_iter()
            .map(|s| s.token)
            .collect()
    }

    #[test]
    fn operators_strings_units_and_comments() {
        assert_eq!(
            tokens("{a=~\"x\\\"y\"} |= `raw\\n` != \"\" [5m] # done\n> 20MB"),
            [
                Token::LBrace,
                Token::Ident("a".into()),
                Token::Match,
                Token::Str("x\"y".into()),
                Token::RBrace,
                Token::PipeExact,
                Token::Str("raw\\n".into()),
                Token::NotEqual,
                Token::Str(String::new()),
                Token::LBracket,
                Token::Duration(300_000_000_000),
                Token::RBracket,
                Token::Greater,
                Token::Bytes(20_000_000),
                Token::End,
            ]
        );
        assert_eq!(
            tokens("1.5e3 1h30m .5"),
            [
                Token::Number(1500.0),
                Token::Duration(5_400_000_000_000),
                Token::Number(0.5),
                Token::End
            ]
        );
    }

    #[test]
    fn errors_point_at_the_offending_character() {
        let error = tokenize("{a=\"x\"} |= \"open").expect_err("unterminated");
        assert_eq!((error.line, error.column), (1, 12));
        let error = tokenize("{a=\"x\"}\n  | 5parsecs").expect_err("bad unit");
        assert_eq!((error.line, error.column), (2, 5));
        assert!(error
            .to_string()
            .starts_with("parse error at line 2, col 5: "));
        let error = tokenize("{a=\"\\q\"}").expect_err("escape");
        assert_eq!(error.column, 5);
    }

    #[test]
    fn durations_and_sizes_read_like_loki() {
        assert_eq!(parse_duration("250ms"), Some(250_000_000));
        assert_eq!(parse_duration("1d"), Some(86_400_000_000_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5q"), None);
        assert_eq!(parse_bytes("1KiB"), Some(1024));
        assert_eq!(parse_bytes("3b"), Some(3));
        assert_eq!(parse_bytes("3"), None);
    }
}
