//! Tokens of a query, read one at a time.

#[derive(Debug, Clone, Copy)]
pub(super) enum Token<'a> {
    Open(usize),
    Close(usize),
    Word(usize, &'a str),
    End(usize),
}

impl Token<'_> {
    pub(super) fn offset(&self) -> usize {
        match *self {
            Self::Open(at) | Self::Close(at) | Self::Word(at, _) | Self::End(at) => at,
        }
    }

    pub(super) fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self, Self::Word(_, word) if word.eq_ignore_ascii_case(keyword))
    }
}

const WORD: u8 = 0;
const SPACE: u8 = 1;
const PAREN: u8 = 2;

/// What each ASCII byte is to the lexer: part of a word, whitespace or a parenthesis.
static ASCII_CLASS: [u8; 256] = {
    let mut table = [WORD; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_whitespace() {
            table[b] = SPACE;
        } else if c == b'(' || c == b')' {
            table[b] = PAREN;
        }
        b += 1;
    }
    table
};

/// Reads tokens one at a time: words are runs of anything but whitespace and parentheses;
/// offsets count characters.
pub(super) struct Lexer<'a> {
    text: &'a str,
    /// ASCII text is read byte by byte; anything else by characters (for the offsets).
    ascii: bool,
    byte: usize,
    chars: usize,
    peeked: Option<Token<'a>>,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Self {
            text,
            ascii: text.is_ascii(),
            byte: 0,
            chars: 0,
            peeked: None,
        }
    }

    pub(super) fn peek(&mut self) -> Token<'a> {
        if let Some(token) = self.peeked {
            return token;
        }
        let token = self.read();
        self.peeked = Some(token);
        token
    }

    pub(super) fn bump(&mut self) {
        if self.peeked.take().is_none() {
            self.read();
        }
    }

    fn read(&mut self) -> Token<'a> {
        if self.ascii {
            self.read_ascii()
        } else {
            self.read_chars()
        }
    }

    /// The common case: byte offsets are character offsets. (The position is kept in a local
    /// and stored once: this loop is most of what checking a query costs.)
    fn read_ascii(&mut self) -> Token<'a> {
        let bytes = self.text.as_bytes();
        let class = |i: usize| bytes.get(i).map(|&b| ASCII_CLASS[usize::from(b)]);
        let mut i = self.byte;
        while class(i) == Some(SPACE) {
            i += 1;
        }
        let at = i;
        let token = match bytes.get(at) {
            None => Token::End(at),
            Some(b'(') => {
                i += 1;
                Token::Open(at)
            }
            Some(b')') => {
                i += 1;
                Token::Close(at)
            }
            Some(_) => {
                i += 1;
                while class(i) == Some(WORD) {
                    i += 1;
                }
                Token::Word(at, self.text.get(at..i).unwrap_or_default())
            }
        };
        self.byte = i;
        token
    }

    fn read_chars(&mut self) -> Token<'a> {
        let base = self.byte;
        let rest = &self.text[base..];
        // (character offset, byte offset in `rest`) of the word being read.
        let mut word: Option<(usize, usize)> = None;
        for (offset, c) in rest.char_indices() {
            if !(c.is_whitespace() || c == '(' || c == ')') {
                if word.is_none() {
                    word = Some((self.chars, offset));
                }
                self.chars += 1;
                continue;
            }
            if let Some((at, start)) = word {
                // The delimiter is read next time.
                self.byte = base + offset;
                return Token::Word(at, &rest[start..offset]);
            }
            let at = self.chars;
            self.chars += 1;
            if c == '(' || c == ')' {
                self.byte = base + offset + 1;
                return if c == '(' {
                    Token::Open(at)
                } else {
                    Token::Close(at)
                };
            }
        }
        self.byte = self.text.len();
        match word {
            Some((at, start)) => Token::Word(at, &rest[start..]),
            None => Token::End(self.chars),
        }
    }
}
