//! Shell-word splitting of `command:` / `entrypoint:` strings, with the rules of
//! `github.com/google/shlex` (what docker/cli uses): quotes, backslash escapes, `#` comments.

/// Why a string could not be split.
#[derive(Debug, PartialEq, Eq)]
pub enum SplitError {
    /// A backslash at the very end.
    EofAfterEscape,
    /// A quote that is never closed.
    UnclosedQuote,
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SplitError::EofAfterEscape => write!(f, "EOF found after escape character"),
            SplitError::UnclosedQuote => write!(f, "EOF found when expecting closing quote"),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Start,
    Word,
    Escaping,
    EscapingQuoted,
    QuotingEscaping,
    Quoting,
    Comment,
}

/// Splits `s` into words like `shlex.Split`.
pub fn split(s: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut state = State::Start;
    for c in s.chars() {
        let space = matches!(c, ' ' | '\t' | '\r' | '\n');
        state = match state {
            State::Start => {
                if space {
                    State::Start
                } else {
                    match c {
                        '"' => State::QuotingEscaping,
                        '\'' => State::Quoting,
                        '\\' => State::Escaping,
                        '#' => State::Comment,
                        _ => {
                            word.push(c);
                            State::Word
                        }
                    }
                }
            }
            State::Word => {
                if space {
                    words.push(std::mem::take(&mut word));
                    State::Start
                } else {
                    match c {
                        '"' => State::QuotingEscaping,
                        '\'' => State::Quoting,
                        '\\' => State::Escaping,
                        _ => {
                            word.push(c);
                            State::Word
                        }
                    }
                }
            }
            State::Escaping => {
                word.push(c);
                State::Word
            }
            State::EscapingQuoted => {
                word.push(c);
                State::QuotingEscaping
            }
            State::QuotingEscaping => match c {
                '"' => State::Word,
                '\\' => State::EscapingQuoted,
                _ => {
                    word.push(c);
                    State::QuotingEscaping
                }
            },
            State::Quoting => {
                if c == '\'' {
                    State::Word
                } else {
                    word.push(c);
                    State::Quoting
                }
            }
            State::Comment => {
                if c == '\n' {
                    State::Start
                } else {
                    State::Comment
                }
            }
        };
    }
    match state {
        State::Word => words.push(word),
        State::Escaping | State::EscapingQuoted => return Err(SplitError::EofAfterEscape),
        State::Quoting | State::QuotingEscaping => return Err(SplitError::UnclosedQuote),
        State::Start | State::Comment => {}
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Vec<String> {
        split(x).expect("splits")
    }

    #[test]
    fn splits_like_google_shlex() {
        assert_eq!(
            s("bundle exec thin -p 3000"),
            ["bundle", "exec", "thin", "-p", "3000"]
        );
        assert_eq!(
            s(r#"sh -c "echo 'hi there'""#),
            ["sh", "-c", "echo 'hi there'"]
        );
        assert_eq!(s(r#"a\ b "c\"d" 'e\f'"#), ["a b", "c\"d", "e\\f"]);
        assert_eq!(s(r#"x "" y"#), ["x", "", "y"]);
        assert_eq!(s("run # comment\nnext"), ["run", "next"]);
        assert_eq!(s("a#b"), ["a#b"]);
        assert_eq!(s("  "), Vec::<String>::new());
        assert_eq!(split("a 'b"), Err(SplitError::UnclosedQuote));
        assert_eq!(split("a \\"), Err(SplitError::EofAfterEscape));
    }
}
