package license

// Channel is a Windows licensing channel.
type Channel string

const (
	ChannelRetail Channel = "retail"
	ChannelOEM    Channel = "oem"
	ChannelMAK    Channel = "mak"
	ChannelKMS    Channel = "kms"
)

// Channels lists the valid channels in display order.
var Channels = []Channel{ChannelRetail, ChannelOEM, ChannelMAK, ChannelKMS}

// Edition is a Windows 7 edition.
type Edition string

const (
	EditionStarter      Edition = "starter"
	EditionHomeBasic    Edition = "home-basic"
	EditionHomePremium  Edition = "home-premium"
	EditionProfessional Edition = "professional"
	EditionUltimate     Edition = "ultimate"
	EditionEnterprise   Edition = "enterprise"
)

// Editions lists the valid editions in display order.
var Editions = []Edition{EditionStarter, EditionHomeBasic, EditionHomePremium, EditionProfessional, EditionUltimate, EditionEnterprise}
