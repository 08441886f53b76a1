//! Rules as the engine runs them.

/// One `SecRule` or `SecAction` (a chain's later links in `chained`).
#[derive(Debug, Default)]
pub struct Rule {
    pub id: u64,
    pub phase: u8,
    pub targets: Vec<Target>,
    pub operator: Operator,
    pub transforms: Vec<Transform>,
    pub msg: String,
    pub logdata: String,
    pub tags: Vec<String>,
    pub severity: Option<String>,
    pub disruptive: Option<Disruptive>,
    pub status: Option<u16>,
    pub setvars: Vec<SetVar>,
    pub skip_after: Option<String>,
    pub ctls: Vec<Ctl>,
    pub chain: bool,
    pub capture: bool,
    pub multi_match: bool,
    /// The rules chained after this one, in order.
    pub chained: Vec<Rule>,
    /// Switched off by `SecRuleRemoveById` / `ByTag`.
    pub removed: bool,
}

/// A variable of a rule, with its selection.
#[derive(Debug, Default, Clone)]
pub struct Target {
    pub collection: Collection,
    pub selector: Option<Selector>,
    /// `!VAR:x`: leaves `x` out of the rule's `VAR`.
    pub exclude: bool,
    /// `&VAR`: how many values it has.
    pub count: bool,
}

/// Which member(s) of a collection.
#[derive(Debug, Clone)]
pub enum Selector {
    /// By name, lower-cased (names compare without case).
    Name(String),
    Regex(regex::Regex),
}

/// The variables rampart's WAF reads.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    #[default]
    Args,
    ArgsNames,
    ArgsGet,
    ArgsGetNames,
    ArgsPost,
    ArgsPostNames,
    QueryString,
    RequestUri,
    RequestUriRaw,
    RequestFilename,
    RequestBasename,
    RequestLine,
    RequestMethod,
    RequestProtocol,
    RequestHeaders,
    RequestHeadersNames,
    RequestCookies,
    RequestCookiesNames,
    RequestBody,
    RemoteAddr,
    UniqueId,
    Tx,
    MatchedVar,
    MatchedVarName,
    MatchedVars,
    MatchedVarsNames,
}

impl Collection {
    pub fn parse(name: &str) -> Option<Collection> {
        use Collection::*;
        Some(match name.to_ascii_uppercase().as_str() {
            "ARGS" => Args,
            "ARGS_NAMES" => ArgsNames,
            "ARGS_GET" => ArgsGet,
            "ARGS_GET_NAMES" => ArgsGetNames,
            "ARGS_POST" => ArgsPost,
            "ARGS_POST_NAMES" => ArgsPostNames,
            "QUERY_STRING" => QueryString,
            "REQUEST_URI" => RequestUri,
            "REQUEST_URI_RAW" => RequestUriRaw,
            "REQUEST_FILENAME" => RequestFilename,
            "REQUEST_BASENAME" => RequestBasename,
            "REQUEST_LINE" => RequestLine,
            "REQUEST_METHOD" => RequestMethod,
            "REQUEST_PROTOCOL" => RequestProtocol,
            "REQUEST_HEADERS" => RequestHeaders,
            "REQUEST_HEADERS_NAMES" => RequestHeadersNames,
            "REQUEST_COOKIES" => RequestCookies,
            "REQUEST_COOKIES_NAMES" => RequestCookiesNames,
            "REQUEST_BODY" => RequestBody,
            "REMOTE_ADDR" => RemoteAddr,
            "UNIQUE_ID" => UniqueId,
            "TX" => Tx,
            "MATCHED_VAR" => MatchedVar,
            "MATCHED_VAR_NAME" => MatchedVarName,
            "MATCHED_VARS" => MatchedVars,
            "MATCHED_VARS_NAMES" => MatchedVarsNames,
            _ => return None,
        })
    }

    /// Its name as rules and logs write it.
    pub fn name(self) -> &'static str {
        use Collection::*;
        match self {
            Args => "ARGS",
            ArgsNames => "ARGS_NAMES",
            ArgsGet => "ARGS_GET",
            ArgsGetNames => "ARGS_GET_NAMES",
            ArgsPost => "ARGS_POST",
            ArgsPostNames => "ARGS_POST_NAMES",
            QueryString => "QUERY_STRING",
            RequestUri => "REQUEST_URI",
            RequestUriRaw => "REQUEST_URI_RAW",
            RequestFilename => "REQUEST_FILENAME",
            RequestBasename => "REQUEST_BASENAME",
            RequestLine => "REQUEST_LINE",
            RequestMethod => "REQUEST_METHOD",
            RequestProtocol => "REQUEST_PROTOCOL",
            RequestHeaders => "REQUEST_HEADERS",
            RequestHeadersNames => "REQUEST_HEADERS_NAMES",
            RequestCookies => "REQUEST_COOKIES",
            RequestCookiesNames => "REQUEST_COOKIES_NAMES",
            RequestBody => "REQUEST_BODY",
            RemoteAddr => "REMOTE_ADDR",
            UniqueId => "UNIQUE_ID",
            Tx => "TX",
            MatchedVar => "MATCHED_VAR",
            MatchedVarName => "MATCHED_VAR_NAME",
            MatchedVars => "MATCHED_VARS",
            MatchedVarsNames => "MATCHED_VARS_NAMES",
        }
    }
}

/// A rule's test.
#[derive(Debug)]
pub struct Operator {
    pub kind: OperatorKind,
    pub negated: bool,
}

impl Default for Operator {
    fn default() -> Self {
        Operator {
            kind: OperatorKind::Unconditional,
            negated: false,
        }
    }
}

#[derive(Debug)]
pub enum OperatorKind {
    Rx(regex::bytes::Regex),
    /// Phrases, lower-cased (matched without case).
    Pm(phrases::Phrases),
    /// Text that may hold `%{...}` macros, expanded when the rule runs.
    StrEq(String),
    Contains(String),
    ContainsWord(String),
    BeginsWith(String),
    EndsWith(String),
    Within(String),
    Eq(String),
    Ge(String),
    Gt(String),
    Le(String),
    Lt(String),
    IpMatch(Vec<ipnet::IpNet>),
    /// Allowed bytes.
    ValidateByteRange(Box<[bool; 256]>),
    Unconditional,
}

/// Phrase lists (`@pm`), matched without case by a plain scan.
pub mod phrases {
    #[derive(Debug)]
    pub struct Phrases(pub Vec<Vec<u8>>);

    impl Phrases {
        pub fn find(&self, hay: &[u8]) -> Option<&[u8]> {
            let lower = hay.to_ascii_lowercase();
            self.0
                .iter()
                .find(|p| !p.is_empty() && lower.windows(p.len()).any(|w| w == p.as_slice()))
                .map(Vec::as_slice)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    None,
    Lowercase,
    Uppercase,
    UrlDecode,
    UrlDecodeUni,
    RemoveNulls,
    ReplaceNulls,
    RemoveWhitespace,
    CompressWhitespace,
    Trim,
    TrimLeft,
    TrimRight,
    Length,
    HtmlEntityDecode,
    NormalisePath,
    NormalisePathWin,
    HexDecode,
    HexEncode,
    Base64Decode,
    Utf8ToUnicode,
    JsDecode,
    CssDecode,
    CmdLine,
    ReplaceComments,
    Sha1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disruptive {
    Pass,
    Deny,
    /// What `SecDefaultAction` says (in anomaly scoring: pass).
    Block,
}

#[derive(Debug, Clone)]
pub enum SetVar {
    Set(String, String),
    Add(String, String),
    Sub(String, String),
    Delete(String),
}

/// One parsed action.
#[derive(Debug)]
pub enum Action {
    Id(u64),
    Phase(u8),
    Msg(String),
    LogData(String),
    Tag(String),
    Severity(String),
    Transform(Transform),
    Chain,
    Capture,
    MultiMatch,
    Disruptive(Disruptive),
    Status(u16),
    SetVar(SetVar),
    SkipAfter(String),
    Ctl(Ctl),
    Ignored,
}

/// `ctl:`: a change to this request's rules, made when the rule matches.
#[derive(Debug, Clone)]
pub enum Ctl {
    /// `ruleRemoveById=N` (or a range).
    RemoveById(u64, u64),
    RemoveByTag(String),
    /// `ruleRemoveTargetById=N;VAR:sel`: the rule no longer reads VAR:sel.
    RemoveTargetById(u64, u64, Target),
    RemoveTargetByTag(String, Target),
    /// `ruleEngine=On|Off|DetectionOnly`.
    Engine(EngineMode),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineMode {
    On,
    Off,
    DetectionOnly,
}
